import json

from revival.cli import main


def test_version(capsys):
    try:
        main(["--version"])
    except SystemExit as e:
        assert e.code == 0
    assert "revival" in capsys.readouterr().out


def test_generate_grid_on_saved_pipeline(random_mini_folder, tmp_path):
    out = tmp_path / "g.png"
    rc = main(["generate", "--model", str(random_mini_folder), "--prompt", "a star in a desert", "-n", "3",
               "--steps", "2", "--out", str(out)])
    assert rc == 0 and out.is_file()
    rec = json.loads(out.with_suffix(".json").read_text())
    assert rec["config"]["n"] == 3 and "sha256" in rec["inputs"]["model"]


def test_generate_errors_are_one_line(tmp_path, capsys):
    assert main(["generate", "--model", str(tmp_path / "missing"), "--prompt", "a star", "--out",
                 str(tmp_path / "g.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no such model folder" in err


def test_generate_rejects_a_word_the_bundled_world_does_not_know(random_mini_folder, tmp_path, capsys):
    out = tmp_path / "g.png"
    assert main(["generate", "--model", str(random_mini_folder), "--prompt", "a dragon in a desert", "-n", "1",
                 "--steps", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown word(s) 'dragon'" in err and "desert" in err
    assert not out.exists() and not out.with_suffix(".json").exists()
