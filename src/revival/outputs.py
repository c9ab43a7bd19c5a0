"""Output folders and files that are complete or absent: checked before work, staged, renamed into place.

Every command writes into a temporary sibling of its output (`.NAME.tmp-PID-TOKEN`) and renames
it into place only when complete; the previous output stays until then, and an error or Ctrl-C
leaves nothing behind. Before any work starts the output is checked: its parent can be created
and written, it is not under a regular file, it is not (and does not hold) an input of the same
run, and an existing non-empty folder is replaced only with --overwrite and only when it looks
like one of our outputs (it has our result.json). A lock file (`.NAME.lock`, holding the pid)
makes a concurrent run to the same output fail with one line. Written files get the user's umask.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import signal
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from revival.errors import RevivalError
from revival.jsonfiles import read_json

RESULT = "result.json"
TRAINING = "training.json"  # what an export of a trained model holds beside its weights: the training record
_claims: list[Path] = []  # locks of resumable run folders, held until the process ends


def unique_sibling(target: Path, tag: str) -> Path:
    """A hidden name beside `target` no other process or call picks: `.NAME.TAG-PID-TOKEN`."""
    return target.with_name(f".{target.name}.{tag}-{os.getpid()}-{secrets.token_hex(4)}")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def apply_umask(path: Path) -> None:
    """Give `path` (and everything under a folder) the modes the user's umask asks for."""
    mask = _umask()
    paths = [path, *path.rglob("*")] if path.is_dir() else [path]
    for p in paths:
        if not p.is_symlink():
            p.chmod((0o777 if p.is_dir() else 0o666) & ~mask)


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C for the duration of a few renames, then raise it: no half-published output."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: got.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)
        if got:
            raise KeyboardInterrupt


def remove(path: Path) -> None:
    """Delete a file, link or folder tree if it is there."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)


def finish_file(tmp: Path, target: Path) -> None:
    """Give a completely written temporary file the umask's mode and rename it to `target`."""
    apply_umask(tmp)
    os.replace(tmp, target)


def looks_like_ours(folder: Path, markers: Iterable[str] = ()) -> bool:
    """True when `folder` holds our result.json (or one of the run files in `markers`) as a JSON object."""
    try:
        result = read_json(folder / RESULT) if (folder / RESULT).is_file() else None
    except RevivalError:
        result = None
    if isinstance(result, dict) and str(result.get("command", "")).startswith("revival") and "version" in result:
        return True
    for name in markers:
        try:
            if (folder / name).is_file() and read_json(folder / name):
                return True
        except RevivalError:
            pass
    return False


def _is_within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_output(out: str | Path, *, overwrite: bool = False, inputs: Iterable[str | Path | None] = (),
                 folder: bool = True, markers: Iterable[str] = ()) -> Path:
    """The absolute output path, after a one-line error for anything that makes it unwritable or unsafe.

    `folder`: the output is a folder (else a file, replaced silently as files are). `inputs`: the
    run's input paths, which the output must neither be nor contain. `markers`: run files that
    also make a folder look like ours.
    """
    out = Path(os.path.abspath(out))
    if out.parent == out:
        raise RevivalError(f"{out}: cannot write an output over the root folder")
    real = Path(os.path.realpath(out))
    for given in inputs:
        if given is None or not os.path.lexists(given):
            continue
        inp = Path(os.path.realpath(given))
        if _is_within(inp, real):
            what = "is" if inp == real else "holds"
            raise RevivalError(f"{out}: {what} an input of this run ({given}); write the output elsewhere")
    ancestor = out.parent
    while not ancestor.exists():
        if ancestor.is_symlink():
            raise RevivalError(f"{out}: cannot be created: {ancestor} is a broken link")
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise RevivalError(f"{out}: cannot be created: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise RevivalError(f"{out}: cannot be written: {ancestor} is not writable")
    if not (out.exists() or out.is_symlink()):
        return out
    if not folder:
        if out.is_dir():
            raise RevivalError(f"{out}: is a folder; give a file name")
        return out
    if not out.is_dir():
        raise RevivalError(f"{out}: exists and is not a folder")
    if any(out.iterdir()):
        if not overwrite:
            raise RevivalError(f"{out}: folder exists and is not empty (pass --overwrite to replace it)")
        if not looks_like_ours(out, markers):
            raise RevivalError(f"{out}: not a revival output (no result.json of ours in it); --overwrite replaces "
                               "only our own outputs: remove it yourself or choose another --out")
    return out


def _make_parents(folder: Path) -> list[Path]:
    """Create `folder` and its missing parents; the folders created, deepest first."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for f in reversed(missing):
        try:
            f.mkdir()
        except FileExistsError:
            pass
        except OSError as e:
            _remove_empty(missing)
            raise RevivalError(f"{f}: cannot be created ({e.strerror})") from None
    return missing


def _remove_empty(folders: list[Path]) -> None:
    for f in folders:
        try:
            f.rmdir()
        except OSError:
            pass


def _lock_owner(lock: Path) -> int | None:
    try:
        return int(lock.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def acquire_lock(out: Path) -> Path:
    """Create `.NAME.lock` beside `out` for this process; one line when a live run holds it."""
    lock = out.with_name(f".{out.name}.lock")
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            pid = _lock_owner(lock)
            if pid is not None and _alive(pid):
                raise RevivalError(f"{out}: another revival run (pid {pid}) is writing this output; wait for it to "
                                   f"finish or choose another --out") from None
            lock.unlink(missing_ok=True)  # left by a run that died
            continue
        except OSError as e:
            raise RevivalError(f"{out}: cannot be written in {out.parent} ({e.strerror})") from None
        with os.fdopen(fd, "w") as f:
            f.write(f"{os.getpid()}\n")
        return lock
    raise RevivalError(f"{out}: its lock file {lock} keeps changing; is another run starting?")


def release_lock(lock: Path) -> None:
    """Remove a lock file this process holds."""
    if _lock_owner(lock) == os.getpid():
        lock.unlink(missing_ok=True)


def publish(tmp: Path, out: Path) -> None:
    """Rename `tmp` to `out`; an existing `out` is moved aside first and deleted once `tmp` is in place."""
    with interrupts_deferred():
        if not (out.exists() or out.is_symlink()):
            os.rename(tmp, out)
            return
        old = unique_sibling(out, "old")
        os.rename(out, old)
        try:
            os.rename(tmp, out)
        except OSError:
            os.rename(old, out)
            raise
        remove(old)


@contextmanager
def staged_folder(out: str | Path, *, overwrite: bool = False, inputs: Iterable[str | Path | None] = (),
                  markers: Iterable[str] = ()) -> Iterator[Path]:
    """Yield an empty temporary folder beside `out`; on success it replaces `out`, on failure it is removed.

    Everything is checked, and the lock taken, on entry: before the caller starts any work. `markers`: as
    `check_output`'s.
    """
    inputs, markers = list(inputs), tuple(markers)
    out = check_output(out, overwrite=overwrite, inputs=inputs, markers=markers)
    created = _make_parents(out.parent)
    try:
        lock = acquire_lock(out)
    except RevivalError:
        _remove_empty(created)
        raise
    try:  # a run that held the lock may have published `out` between the first check and the lock
        check_output(out, overwrite=overwrite, inputs=inputs, markers=markers)
    except RevivalError:
        release_lock(lock)
        _remove_empty(created)
        raise
    tmp = unique_sibling(out, "tmp")
    try:
        tmp.mkdir()
        yield tmp
        check_output(out, overwrite=overwrite, inputs=inputs, markers=markers)  # nothing changed while working
        apply_umask(tmp)
        publish(tmp, out)
    except BaseException:
        with interrupts_deferred():
            remove(tmp)
            release_lock(lock)
            _remove_empty(created)
        raise
    release_lock(lock)


@contextmanager
def staged_files(*targets: str | Path, inputs: Iterable[str | Path | None] = ()) -> Iterator[list[Path]]:
    """Yield temporary names beside the files `targets`; on success each is renamed to its target."""
    inputs = list(inputs)
    outs = [check_output(t, inputs=inputs, folder=False) for t in targets]
    created = [f for o in outs for f in _make_parents(o.parent)]
    try:
        lock = acquire_lock(outs[0])
    except RevivalError:
        _remove_empty(created)
        raise
    tmps = [unique_sibling(o, "tmp") for o in outs]
    try:
        yield tmps
        with interrupts_deferred():
            for tmp, o in zip(tmps, outs, strict=True):
                finish_file(tmp, o)
    except BaseException:
        with interrupts_deferred():
            for tmp in tmps:
                remove(tmp)
            release_lock(lock)
            _remove_empty(created)
        raise
    release_lock(lock)


def claim_run_folder(out: str | Path, *, overwrite: bool = False, inputs: Iterable[str | Path | None] = (),
                     markers: Iterable[str] = (), resume: bool = False) -> Path:
    """Check, lock (until `release_claims` or exit) and create a resumable run folder that is written in place.

    A fresh run gets an empty folder (an old run of ours is removed with `overwrite`); `resume`
    keeps the folder's content and only takes the lock.
    """
    markers = tuple(markers)
    path = Path(out)
    if resume:
        if not path.is_dir():
            raise RevivalError(f"{path}: no such run folder")
        absolute = Path(os.path.abspath(path))
    else:
        absolute = check_output(path, overwrite=overwrite, inputs=inputs, markers=markers)
    _make_parents(absolute.parent)
    lock = acquire_lock(absolute)
    _claims.append(lock)
    if not resume:
        check_output(absolute, overwrite=overwrite, inputs=inputs, markers=markers)  # as it is now, under the lock
        if absolute.exists() and any(absolute.iterdir()):
            remove(absolute)
    absolute.mkdir(exist_ok=True)
    return path


def release_claims() -> None:
    """Release the locks `claim_run_folder` took (the command line calls it when a command ends)."""
    while _claims:
        release_lock(_claims.pop())


atexit.register(release_claims)
