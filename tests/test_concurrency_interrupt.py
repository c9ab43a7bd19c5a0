"""Two runs to one --out, and Ctrl-C at start-up and during work, in real processes (issue 12)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from corpus_cases import snapshot

from revival.testing import tiny_sd_pipeline

SRC = str(Path(__file__).resolve().parents[1] / "src")
ENV = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def sd(tmp_path_factory):
    torch.set_num_threads(1)
    return tiny_sd_pipeline(tmp_path_factory.mktemp("model") / "sd")


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "revival", *map(str, args)], env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def prune(sd: Path, out: Path, steps: int = 3, timesteps: int = 2) -> subprocess.Popen:
    return start("prune", "--model", sd, "--concept", "church", "--out", out, "--steps", steps,
                 "--timesteps", timesteps)


def wait_for(cond, proc: subprocess.Popen, timeout: float = 120) -> None:
    end = time.time() + timeout
    while not cond():
        assert proc.poll() is None, proc.communicate()
        assert time.time() < end, "timed out"
        time.sleep(0.02)


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_second_run_to_a_taken_out_fails_with_one_line(sd, tmp_path):
    out = tmp_path / "run"
    first = prune(sd, out, steps=20)
    wait_for((tmp_path / ".run.lock").exists, first)
    for second in (prune(sd, out), start("revive", "--unet", sd, "--out", out)):
        _, err = second.communicate(timeout=60)
        assert second.returncode == 2 and len(lines(err)) == 1, err
        assert f"another revival run (pid {first.pid})" in err and str(out) in err and "Traceback" not in err
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["masks.safetensors", "result.json", "unet"]
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # no temporary folder or lock left
    again = prune(sd, out)  # the first run's output is not replaced without --overwrite
    _, err = again.communicate(timeout=60)
    assert again.returncode == 2 and "--overwrite" in err and len(lines(err)) == 1


def test_two_runs_started_together_one_wins(sd, tmp_path):
    out = tmp_path / "run"
    procs = [prune(sd, out), prune(sd, out)]
    results = [(p.wait(timeout=300), p.communicate()[1]) for p in procs]
    assert sorted(code for code, _ in results) == [0, 2], results
    loser = next(err for code, err in results if code == 2)
    assert len(lines(loser)) == 1 and "Traceback" not in loser
    assert "another revival run" in loser or "not empty" in loser
    assert [p.name for p in tmp_path.iterdir()] == ["run"] and (out / "result.json").is_file()


@pytest.mark.parametrize("delay", [0.3, 1.0, 2.5])  # in our imports, parsing, torch's import, pipeline loading
def test_ctrl_c_during_start_up(sd, tmp_path, delay):
    """(A Ctrl-C in the interpreter's own first ~50 ms, before any revival code runs, is Python's to report.)"""
    before = snapshot(sd)
    proc = prune(sd, tmp_path / "run")
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and lines(err) == [lines(err)[0]] and lines(err)[0].endswith("interrupted"), err
    assert list(tmp_path.iterdir()) == [] and snapshot(sd) == before


def test_ctrl_c_during_work(sd, tmp_path):
    before = snapshot(sd)
    proc = prune(sd, tmp_path / "run", steps=999, timesteps=400)  # about 10 s of sampling on a quiet core
    wait_for(lambda: any(p.name.startswith(".run.tmp-") for p in tmp_path.iterdir()), proc)
    time.sleep(3)  # loading the pipeline or sampling
    assert proc.poll() is None
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert lines(err)[-1] == "revival prune: interrupted" and "wrote" not in err
    assert list(tmp_path.iterdir()) == [] and snapshot(sd) == before


def test_entry_ignores_ctrl_c_once_the_work_is_done(monkeypatch):
    """A Ctrl-C in torch's exit hooks, after the output is published, changes neither the exit code nor stderr."""
    import revival.cli as cli

    monkeypatch.setattr(cli, "main", lambda: 0)
    previous = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(SystemExit) as done:
            cli.entry()
        assert done.value.code == 0 and signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
