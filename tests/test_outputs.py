"""Staged outputs, locks, the --overwrite guard, umask modes and strict JSON (revival.outputs, revival.jsonfiles)."""

import json
import math
import os
import stat

import pytest
import torch
from attack_helpers import prune, tiny_unet

from revival.checkpoints import atomic_write_json, save_unet_folder
from revival.cli import main
from revival.errors import RevivalError
from revival.jsonfiles import dumps_strict, read_json
from revival.outputs import acquire_lock, check_output, looks_like_ours, release_lock, staged_files, staged_folder


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_staged_folder_publishes_only_when_complete(tmp_path):
    out = tmp_path / "a" / "b" / "out"
    with staged_folder(out) as tmp:
        assert tmp.parent == out.parent and tmp.name.startswith(".out.tmp-") and not out.exists()
        (tmp / "result.json").write_text("{}")
    assert (out / "result.json").read_text() == "{}" and os.listdir(out.parent) == ["out"]


@pytest.mark.parametrize("failure", [RevivalError("bad"), KeyboardInterrupt()])
def test_staged_folder_failure_keeps_the_previous_output(tmp_path, failure):
    out = tmp_path / "out"
    out.mkdir()
    (out / "result.json").write_text(json.dumps({"command": "revival x", "version": "0"}))
    with pytest.raises(type(failure)), staged_folder(out, overwrite=True) as tmp:
        (tmp / "half").write_text("x")
        raise failure
    assert os.listdir(tmp_path) == ["out"] and os.listdir(out) == ["result.json"]


def test_failed_run_removes_the_parents_it_created(tmp_path):
    with pytest.raises(RevivalError), staged_folder(tmp_path / "x" / "y" / "out"):
        raise RevivalError("bad")
    assert list(tmp_path.iterdir()) == []


def test_overwrite_guard(tmp_path):
    unet = tmp_path / "run" / "unet"
    unet.mkdir(parents=True)
    (unet / "config.json").write_text("{}")
    with pytest.raises(RevivalError, match="is an input"):
        check_output(unet, overwrite=True, inputs=[unet])
    with pytest.raises(RevivalError, match="holds an input"):
        check_output(tmp_path / "run", overwrite=True, inputs=[unet / "config.json"])
    with pytest.raises(RevivalError, match="not a revival output"):
        check_output(tmp_path / "run", overwrite=True)
    (tmp_path / "run" / "result.json").write_text(json.dumps({"command": "revival prune", "version": "0"}))
    assert looks_like_ours(tmp_path / "run") and check_output(tmp_path / "run", overwrite=True)
    (tmp_path / "run" / "result.json").write_text(json.dumps({"command": "other tool", "version": "0"}))
    assert not looks_like_ours(tmp_path / "run")
    (tmp_path / "file").write_text("x")
    with pytest.raises(RevivalError, match="is a file, not a folder"):
        check_output(tmp_path / "file" / "out")


def test_lock_of_a_live_run_refuses_a_dead_one_is_taken_over(tmp_path):
    out = tmp_path / "out"
    lock = acquire_lock(out)
    with pytest.raises(RevivalError, match=f"another revival run \\(pid {os.getpid()}\\)"):
        acquire_lock(out)
    release_lock(lock)
    lock.write_text("999999999\n")  # no such process
    assert acquire_lock(out) == lock and lock.read_text().split()[0] == str(os.getpid())
    release_lock(lock)
    assert not lock.exists()


def test_staged_files_replace_each_target(tmp_path):
    (tmp_path / "g.png").write_text("old")
    with staged_files(tmp_path / "g.png", tmp_path / "g.json") as (png, rec):
        png.write_text("new")
        rec.write_text("{}")
    assert (tmp_path / "g.png").read_text() == "new" and sorted(os.listdir(tmp_path)) == ["g.json", "g.png"]


def test_written_files_follow_the_umask(tmp_path, umask_022):
    unet = tiny_unet()
    save_unet_folder(prune(unet.state_dict()), dict(unet.config), tmp_path / "unet")
    assert main(["revive", "--unet", str(tmp_path / "unet"), "--out", str(tmp_path / "rev")]) == 0
    for p in [tmp_path / "unet", *(tmp_path / "unet").iterdir(), tmp_path / "rev", *(tmp_path / "rev").rglob("*")]:
        assert mode(p) == (0o755 if p.is_dir() else 0o644), (p, oct(mode(p)))


def test_strict_json_names_the_key(tmp_path):
    with pytest.raises(RevivalError, match=r"r.json: a\.1\.b is not a finite number"):
        atomic_write_json({"a": [0, {"b": math.nan}]}, tmp_path / "r.json")
    assert list(tmp_path.iterdir()) == []
    assert json.loads(dumps_strict({"p": tmp_path}, "x")) == {"p": str(tmp_path)}


@pytest.mark.parametrize("text, message", [("", "is empty"), ("{x", "not valid JSON"), ("[1]", "expected an object"),
                                           ("[" * 100000, "nested too deeply|not valid JSON")])
def test_read_json_errors_name_the_file(tmp_path, text, message):
    (tmp_path / "c.json").write_text(text)
    with pytest.raises(RevivalError, match=f"c.json: .*({message})"):
        read_json(tmp_path / "c.json")


def test_interrupted_unet_folder_write_keeps_the_old_one(tmp_path, monkeypatch):
    import revival.checkpoints as ck

    save_unet_folder({"w": torch.ones(2)}, {"a": 1}, tmp_path / "unet")

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(ck, "save_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_unet_folder({"w": torch.zeros(2)}, {"a": 2}, tmp_path / "unet")
    assert os.listdir(tmp_path) == ["unet"] and read_json(tmp_path / "unet" / "config.json") == {"a": 1}


def test_output_published_while_waiting_for_the_lock_refuses_before_any_work(tmp_path, monkeypatch):
    """Two runs started together: the one that takes the lock after the other published fails on entry."""
    import revival.outputs as outputs

    out = tmp_path / "run"
    taken = outputs.acquire_lock

    def lock_after_the_winner_published(path):
        out.mkdir()
        (out / "result.json").write_text("{}")  # the winner's output, published between our check and our lock
        return taken(path)

    monkeypatch.setattr(outputs, "acquire_lock", lock_after_the_winner_published)
    with pytest.raises(RevivalError, match="not empty"):
        with staged_folder(out):
            pytest.fail("work started")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no lock or temporary folder left
