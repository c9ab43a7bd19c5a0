import json

from revival.cli import main


def test_version(capsys):
    try:
        main(["--version"])
    except SystemExit as e:
        assert e.code == 0
    assert "revival" in capsys.readouterr().out


def test_generate_grid_on_saved_pipeline(random_mini_pipeline, tmp_path):
    random_mini_pipeline.save_pretrained(tmp_path / "pipe")
    out = tmp_path / "g.png"
    rc = main(["generate", "--model", str(tmp_path / "pipe"), "--prompt", "a star in a desert", "-n", "3",
               "--steps", "2", "--out", str(out)])
    assert rc == 0 and out.is_file()
    rec = json.loads(out.with_suffix(".json").read_text())
    assert rec["config"]["n"] == 3 and "sha256" in rec["inputs"]["model"]


def test_generate_errors_are_one_line(tmp_path, capsys):
    assert main(["generate", "--model", str(tmp_path / "missing"), "--prompt", "a star", "--out",
                 str(tmp_path / "g.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no such model folder" in err
