"""The bad-input corpus (issue 12): named command lines that must each fail cleanly.

Each case is one command line with placeholders, an optional setup that writes the case's bad
files, and the fragments its one error line must contain (always the file or the option at
fault). `run_case` runs it in-process on a fresh copy of a small workspace and reports the exit
code, stderr, any traceback and every file that changed, appeared or vanished, so the test (and
`benchmarks/bad_input_corpus.py`, which records the table for a source tree) can judge it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import pickle
import shutil
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

HUGE_N = "1000000000"
LONG_WORD = "x" * 200_000


@dataclass(frozen=True)
class Case:
    """One bad command line: what to run, what its one error line must say, and the bad files it needs."""

    name: str
    argv: tuple[str, ...]
    says: tuple[str, ...]  # fragments of the error line; the first names the file or option at fault
    setup: Callable[[Path, Path], None] | None = None  # (workspace, case folder) -> None
    code: int = 2
    never: tuple[str, ...] = ()  # fragments stderr must not contain
    needs_no_cuda: bool = False
    unbounded: bool = False  # runs without bound (memory, time) where the check is missing: not run on old trees


@dataclass
class Outcome:
    """What a case did: exit code, stderr, traceback (if it raised) and the workspace changes."""

    code: int | None
    err: str
    traceback: str | None
    changed: list[str] = field(default_factory=list)
    says: tuple[str, ...] = ()  # the case's expected fragments, placeholders filled

    @property
    def lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


# ------------------------------------------------------------------------------------------ workspace
def build_base(root: Path) -> Path:
    """The shared inputs: a tiny SD pipeline, a prune-like output of its UNet, and that UNet as one file."""
    from diffusers import UNet2DConditionModel

    from revival.testing import tiny_sd_pipeline

    sd = tiny_sd_pipeline(root / "sd")
    unet = UNet2DConditionModel.from_pretrained(sd / "unet")
    state = {k: v.detach().clone() for k, v in unet.state_dict().items()}
    g = torch.Generator().manual_seed(0)
    masks = {}
    for name, w in state.items():
        if name.endswith("ff.net.2.weight"):
            masks[name] = torch.rand(w.shape, generator=g) < 0.05
            state[name] = w.masked_fill(masks[name], 0.0)
    unet.load_state_dict(state)
    run = root / "run"
    unet.save_pretrained(run / "unet")
    save_file({k: m.to(torch.uint8) for k, m in masks.items()}, str(run / "masks.safetensors"))
    (run / "result.json").write_text(json.dumps({"command": "revival prune --concept church", "version": "0",
                                                 "config": {}, "inputs": {}}))
    save_file(state, str(root / "pruned.safetensors"))
    return root


def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file (and a marker for every folder and link) under `root`, hidden ones included."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            out[os.path.relpath(os.path.join(dirpath, d), root)] = "folder"
        for f in filenames:
            p = os.path.join(dirpath, f)
            key = os.path.relpath(p, root)
            if os.path.islink(p):
                out[key] = "link"
                continue
            with open(p, "rb") as fh:
                out[key] = hashlib.sha256(fh.read()).hexdigest()
    return out


def changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """'+path' (appeared), '-path' (vanished), '~path' (changed)."""
    return ([f"+{k}" for k in sorted(set(after) - set(before))] + [f"-{k}" for k in sorted(set(before) - set(after))]
            + [f"~{k}" for k in sorted(set(before) & set(after)) if before[k] != after[k]])


def unwritable_dir(case: Path) -> Path:
    """A folder this process cannot create anything in (for root, a path under /sys)."""
    if os.geteuid() == 0:
        return Path("/sys/revival-corpus")
    ro = case / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    return ro


def fill(text: str, ws: Path, case: Path, ro: Path | None = None) -> str:
    """A command-line word (or expected fragment) with its placeholders filled in."""
    return text.format(ws=ws, case=case, sd=ws / "sd", run=ws / "run", unet=ws / "run" / "unet",
                       masks=ws / "run" / "masks.safetensors", st=ws / "pruned.safetensors", out=case / "out", ro=ro)


def run_case(case: Case, base: Path, ws: Path) -> Outcome:
    """Copy `base` to `ws`, set the case up, run it with `revival.cli.main` and collect what happened."""
    from revival.cli import main

    shutil.copytree(base, ws, symlinks=True)
    folder = ws / "case"
    folder.mkdir()
    if case.setup is not None:
        case.setup(ws, folder)
    ro = unwritable_dir(folder) if any("{ro}" in a for a in case.argv) else None
    argv = [fill(a, ws, folder, ro) for a in case.argv]
    before = snapshot(ws)
    err, out = io.StringIO(), io.StringIO()
    code, tb = None, None
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code = main(argv)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        except BaseException:  # noqa: BLE001 - a traceback is the finding
            tb = traceback.format_exc()
    outcome = Outcome(code, err.getvalue(), tb, changes(before, snapshot(ws)))
    outcome.says = tuple(fill(f, ws, folder, ro) for f in case.says)
    if (folder / "ro").exists():
        (folder / "ro").chmod(0o755)
    return outcome


def judge(case: Case, got: Outcome) -> list[str]:
    """What is wrong with an outcome (empty: the case failed cleanly, as it must)."""
    if got.traceback is not None:
        return [f"traceback: {got.traceback.strip().splitlines()[-1][:200]}"]
    problems = []
    if got.code != case.code:
        problems.append(f"exit {got.code}, not {case.code}")
    if "Traceback" in got.err:
        problems.append("a traceback on stderr")
    if len(got.lines) != 1 or len(got.err) >= 1200:
        problems.append(f"{len(got.lines)} lines ({len(got.err)} characters) on stderr")
    line = got.lines[-1] if got.lines else ""
    missing = [f for f in got.says if f not in line]
    if missing:
        problems.append(f"the line does not name {missing[0]!r}")
    if any(f in got.err for f in case.never):
        problems.append("stderr says what it must not: " + next(f for f in case.never if f in got.err))
    if got.changed:
        problems.append("files changed: " + " ".join(got.changed[:4]) + (" ..." if len(got.changed) > 4 else ""))
    return problems


# ------------------------------------------------------------------------------------------ bad files
def _state(ws: Path) -> dict[str, torch.Tensor]:
    return load_file(str(ws / "pruned.safetensors"))


def _layers(state: dict[str, torch.Tensor]) -> list[str]:
    return [k for k in state if k.endswith("ff.net.2.weight")]


def _write_state(path: Path, change: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]):
    def setup(ws: Path, case: Path) -> None:
        save_file(change(_state(ws)), str(case / path))
    return setup


def _all_zero(sd):
    return {k: torch.zeros_like(v) if k in _layers(sd) else v for k, v in sd.items()}


def _as(dtype):
    return lambda sd: {k: (v != 0) if dtype is torch.bool else v.to(dtype) for k, v in sd.items()}


def _nan(sd):
    name = _layers(sd)[0]
    w = sd[name].clone()
    w[tuple((w != 0).nonzero()[0])] = float("nan")  # a surviving weight, not a pruned position
    return {**sd, name: w}


def _copy_unet(config: str | None):
    def setup(ws: Path, case: Path) -> None:
        shutil.copytree(ws / "run" / "unet", case / "u")
        if config is not None:
            (case / "u" / "config.json").write_text(config)
    return setup


def _copy_model(file: str, content: str):
    def setup(ws: Path, case: Path) -> None:
        shutil.copytree(ws / "sd", case / "m")
        (case / "m" / file).write_text(content)
    return setup


def _model_without_ffn(ws: Path, case: Path) -> None:
    """The tiny SD pipeline with a UNet of plain ResNet blocks: no feed-forward layer for the method to prune."""
    from diffusers import UNet2DConditionModel

    shutil.copytree(ws / "sd", case / "m")
    shutil.rmtree(case / "m" / "unet")
    UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(16, 32),
                         down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
                         mid_block_type=None, layers_per_block=1, norm_num_groups=8,
                         cross_attention_dim=32).save_pretrained(case / "m" / "unet")


def _resnet18_file(ws: Path, case: Path) -> None:
    """A ResNet-18-shaped state dict (basic blocks): the wrong architecture for the objects' ResNet-50."""
    case.mkdir(parents=True, exist_ok=True)
    save_file({"conv1.weight": torch.zeros(64, 3, 7, 7), "layer1.0.conv1.weight": torch.zeros(64, 64, 3, 3),
               "fc.weight": torch.zeros(1000, 512), "fc.bias": torch.zeros(1000)}, str(case / "resnet18.safetensors"))


def _write(name: str, content: str | bytes):
    def setup(ws: Path, case: Path) -> None:
        path = case / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    return setup


def _masks(change: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]):
    def setup(ws: Path, case: Path) -> None:
        save_file(change(load_file(str(ws / "run" / "masks.safetensors"))), str(case / "masks.safetensors"))
    return setup


def _truncated(ws: Path, case: Path) -> None:
    data = (ws / "pruned.safetensors").read_bytes()
    (case / "cut.safetensors").write_bytes(data[: len(data) // 2])


def _torch_pickle(ws: Path, case: Path) -> None:
    torch.save(_state(ws), case / "m.pt")


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo revival-corpus-pwned",))


def _evil_pickle(ws: Path, case: Path) -> None:
    with open(case / "evil.pt", "wb") as f:
        pickle.dump({"w": _Evil()}, f)


def _wrong_reference(ws: Path, case: Path) -> None:
    sd = _state(ws)
    name = _layers(sd)[0]
    save_file({**sd, name: torch.randn(3, 3)}, str(case / "ref.safetensors"))


def _other_unet(ws: Path, case: Path) -> None:
    save_file({"nope.weight": torch.randn(2, 2)}, str(case / "other.safetensors"))


def _foreign(ws: Path, case: Path) -> None:
    (case / "notes").mkdir()
    (case / "notes" / "notes.txt").write_text("my notes")


def _run_file(name: str, content: str):
    def setup(ws: Path, case: Path) -> None:
        (case / "run").mkdir()
        (case / "run" / name).write_text(content)
    return setup


FAST_PRUNE = ("--steps", "3", "--timesteps", "2")
GEN = ("generate", "--model", "{sd}", "--prompt", "a church", "-n", "1", "--steps", "1")

CASES: list[Case] = [
    # ---- data loss: --overwrite and inputs
    Case("revive_out_is_its_input", ("revive", "--unet", "{unet}", "--out", "{unet}", "--overwrite"),
         ("{unet}", "is an input")),
    Case("revive_out_holds_its_input", ("revive", "--unet", "{unet}", "--out", "{run}", "--overwrite"),
         ("{run}", "holds an input")),
    Case("obfuscate_out_holds_its_masks", ("obfuscate", "--unet", "{st}", "--masks", "{masks}", "--out", "{run}",
                                           "--overwrite"), ("{run}", "holds an input")),
    Case("prune_out_is_its_model", ("prune", "--model", "{sd}", "--concept", "church", "--out", "{sd}",
                                    "--overwrite", *FAST_PRUNE), ("{sd}", "is an input")),
    Case("overwrite_foreign_folder", ("revive", "--unet", "{unet}", "--out", "{case}/notes", "--overwrite"),
         ("{case}/notes", "not a revival output"), setup=_foreign),
    Case("overwrite_folder_with_garbage_result_json", ("revive", "--unet", "{unet}", "--out", "{case}/old",
                                                       "--overwrite"), ("{case}/old", "not a revival output"),
         setup=_write("old/result.json", "{garbage")),
    Case("out_not_empty_without_overwrite", ("revive", "--unet", "{unet}", "--out", "{case}/old"),
         ("{case}/old", "--overwrite"), setup=_write("old/x.txt", "x")),
    Case("out_is_a_file", ("revive", "--unet", "{unet}", "--out", "{case}/f.txt"), ("{case}/f.txt", "not a folder"),
         setup=_write("f.txt", "x")),
    Case("out_under_a_regular_file", ("prune", "--model", "{sd}", "--concept", "church", "--out",
                                      "{case}/f.txt/run", *FAST_PRUNE), ("{case}/f.txt", "is a file"),
         setup=_write("f.txt", "x")),
    Case("out_in_unwritable_folder", ("prune", "--model", "{sd}", "--concept", "church", "--out", "{ro}/run",
                                      *FAST_PRUNE), ("{ro}", "cannot be")),
    # ---- memory
    Case("generate_n_huge", ("generate", "--model", "{sd}", "--prompt", "a church", "-n", HUGE_N, "--out",
                             "{case}/g.png"), ("-n " + HUGE_N, "memory"), unbounded=True),
    Case("evaluate_n_huge", ("evaluate", "--concept", "star", "-n", HUGE_N, "--out", "{out}"),
         ("-n " + HUGE_N, "memory"), unbounded=True),
    Case("experiment_n_eval_huge", ("experiment", "rq1", "--n-eval", HUGE_N, "--out", "{out}"),
         ("--n-eval " + HUGE_N, "memory"), unbounded=True),
    Case("experiment_preserved_on_sd", ("experiment", "rq3", "--model", "{sd}", "--unet", "{unet}", "--masks",
                                        "{masks}", "--preserved", "2", "--out", "{out}"),
         ("--preserved", "miniature Stable Diffusion only")),
    Case("generate_first_generation_folder", ("generate", "--model", "{case}/gen1", "--prompt", "a star", "--out",
                                              "{case}/g.png"), ("{case}/gen1", "no longer supported"),
         setup=_write("gen1/model_index.json", json.dumps({"_class_name": "MiniPipeline"}))),
    # ---- silent nonsense
    Case("revive_all_zero_checkpoint", ("revive", "--unet", "{case}/zero.safetensors", "--out", "{out}"),
         ("{case}/zero.safetensors", "nothing to complete from"),
         setup=_write_state(Path("zero.safetensors"), _all_zero)),
    Case("revive_int8_weights", ("revive", "--unet", "{case}/i8.safetensors", "--out", "{out}"),
         ("{case}/i8.safetensors", "int8", "floating point"), setup=_write_state(Path("i8.safetensors"),
                                                                                 _as(torch.int8))),
    Case("revive_bool_weights", ("revive", "--unet", "{case}/b.safetensors", "--out", "{out}"),
         ("{case}/b.safetensors", "bool", "floating point"), setup=_write_state(Path("b.safetensors"),
                                                                                _as(torch.bool))),
    Case("obfuscate_nan_checkpoint", ("obfuscate", "--unet", "{case}/nan.safetensors", "--masks", "{masks}",
                                      "--out", "{out}"), ("{case}/nan.safetensors", "NaN or Inf"),
         setup=_write_state(Path("nan.safetensors"), _nan)),
    Case("obfuscate_int8_checkpoint", ("obfuscate", "--unet", "{case}/i8.safetensors", "--masks", "{masks}",
                                       "--out", "{out}"), ("{case}/i8.safetensors", "floating point"),
         setup=_write_state(Path("i8.safetensors"), _as(torch.int8))),
    Case("generate_int8_unet", (*GEN, "--unet", "{case}/i8.safetensors", "--out", "{case}/g.png"),
         ("{case}/i8.safetensors", "floating point"), setup=_write_state(Path("i8.safetensors"), _as(torch.int8))),
    Case("prune_guidance_nan", ("prune", "--model", "{sd}", "--concept", "church", "--out", "{out}", "--guidance",
                                "nan"), ("--guidance", "finite")),
    Case("generate_guidance_inf", (*GEN, "--guidance", "inf", "--out", "{case}/g.png"), ("--guidance", "finite")),
    Case("prune_steps_zero", ("prune", "--model", "{sd}", "--concept", "church", "--out", "{out}", "--steps", "0"),
         ("--steps", ">= 1")),
    Case("generate_steps_beyond_scheduler", ("generate", "--model", "{sd}", "--prompt", "a church", "--steps",
                                             "5000", "--out", "{case}/g.png"), ("--steps 5000", "999")),
    Case("prune_steps_at_the_scheduler_edge", ("prune", "--model", "{sd}", "--concept", "church", "--out", "{out}",
                                               "--steps", "1000", "--timesteps", "2"), ("--steps 1000", "999")),
    Case("revive_unet_config_is_a_list", ("revive", "--unet", "{case}/u", "--out", "{out}"),
         ("{case}/u/config.json", "expected an object"), setup=_copy_unet("[1, 2, 3]")),
    # ---- tracebacks before
    Case("revive_unet_config_garbage", ("revive", "--unet", "{case}/u", "--out", "{out}"),
         ("{case}/u/config.json", "not valid JSON"), setup=_copy_unet("{not json")),
    Case("revive_unet_config_empty", ("revive", "--unet", "{case}/u", "--out", "{out}"),
         ("{case}/u/config.json", "empty"), setup=_copy_unet("")),
    Case("prune_model_index_garbage", ("prune", "--model", "{case}/m", "--concept", "church", "--out", "{out}"),
         ("{case}/m/model_index.json", "not valid JSON"), setup=_copy_model("model_index.json", "garbage")),
    Case("prune_model_index_empty", ("prune", "--model", "{case}/m", "--concept", "church", "--out", "{out}"),
         ("{case}/m/model_index.json", "empty"), setup=_copy_model("model_index.json", "")),
    Case("generate_model_index_list", ("generate", "--model", "{case}/m", "--prompt", "a", "--out", "{case}/g.png"),
         ("{case}/m/model_index.json", "expected an object"), setup=_copy_model("model_index.json", "[1]")),
    Case("prune_unet_config_garbage", ("prune", "--model", "{case}/m", "--concept", "church", "--out", "{out}",
                                       *FAST_PRUNE), ("{case}/m/unet/config.json", "not valid JSON"),
         setup=_copy_model("unet/config.json", "{{{")),
    Case("experiment_resume_garbage_run_file", ("experiment", "rq3", "--resume", "{case}/run"),
         ("{case}/run/experiment-run.json", "not valid JSON"), setup=_run_file("experiment-run.json", "garbage")),
    Case("experiment_resume_run_file_wrong_shape", ("experiment", "rq3", "--resume", "{case}/run"),
         ("{case}/run/experiment-run.json", "not an experiment run file"),
         setup=_run_file("experiment-run.json", '{"name": 3}')),
    Case("demo_resume_garbage_run_file", ("demo", "--resume", "{case}/run"),
         ("{case}/run/demo-run.json", "not valid JSON"), setup=_run_file("demo-run.json", "\x00\x01garbage")),
    Case("revive_locate_param_unknown_key", ("revive", "--unet", "{unet}", "--out", "{out}", "--locate",
                                             "global_bottom", "--locate-param", "foo=1"), ("--locate-param", "foo")),
    Case("revive_locate_param_text_value", ("revive", "--unet", "{unet}", "--out", "{out}", "--locate",
                                            "global_bottom", "--locate-param", "ratio=abc"),
         ("--locate-param", "ratio must be a number")),
    Case("revive_locate_param_nan", ("revive", "--unet", "{unet}", "--out", "{out}", "--locate", "row_outlier",
                                     "--locate-param", "scale=NaN"), ("--locate-param", "scale")),
    Case("obfuscate_param_text_value", ("obfuscate", "--unet", "{st}", "--masks", "{masks}", "--out", "{out}",
                                        "--method", "decoy", "--param", "decoys=abc"), ("--param", "decoys")),
    Case("obfuscate_param_unknown_key", ("obfuscate", "--unet", "{st}", "--masks", "{masks}", "--out", "{out}",
                                         "--param", "decoys=2"), ("--param", "takes no parameter decoys")),
    Case("generate_device_bogus", (*GEN, "--device", "bogus", "--out", "{case}/g.png"), ("--device", "bogus")),
    Case("generate_device_cuda_without_cuda", (*GEN, "--device", "cuda", "--out", "{case}/g.png"),
         ("--device cuda", "CUDA is not available"), needs_no_cuda=True),
    Case("revive_device_cuda_without_cuda", ("revive", "--unet", "{unet}", "--out", "{out}", "--device", "cuda:0"),
         ("--device cuda:0", "CUDA is not available"), needs_no_cuda=True),
    Case("prune_device_cuda_without_cuda", ("prune", "--model", "{sd}", "--concept", "church", "--out", "{out}",
                                            "--device", "cuda"), ("--device cuda", "CUDA is not available"),
         needs_no_cuda=True),
    Case("obfuscate_device_cuda_without_cuda", ("obfuscate", "--unet", "{st}", "--masks", "{masks}", "--out", "{out}",
                                                "--device", "cuda"), ("--device cuda", "CUDA is not available"),
         needs_no_cuda=True),
    # ---- models as the ecosystem names them (tests run with HF_HUB_OFFLINE=1: see conftest.py)
    Case("generate_hub_id_unfetchable", ("generate", "--model", "revival-tests/no-such-model", "--prompt", "a church",
                                         "--out", "{case}/g.png"),
         ("revival-tests/no-such-model", "cannot load this model")),
    Case("prune_hub_id_unfetchable", ("prune", "--model", "revival-tests/no-such-model", "--concept", "church",
                                      "--out", "{out}"), ("revival-tests/no-such-model", "cannot load this model")),
    Case("prune_model_without_feed_forward_layers", ("prune", "--model", "{case}/m", "--concept", "church",
                                                     "--out", "{out}", *FAST_PRUNE),
         ("{case}/m", "no feed-forward layers found"), setup=_model_without_ffn),
    Case("generate_unknown_word", ("generate", "--prompt", "a dragon in a desert", "-n", "1", "--steps", "1",
                                   "--out", "{case}/g.png"), ("'dragon'", "unknown word")),
    Case("generate_unknown_argument", (*GEN, "--promt", "x", "--out", "{case}/g.png"),
         ("--promt", "unrecognized arguments")),
    Case("unknown_command", ("revivve",), ("'revivve'", "invalid choice")),
    # ---- messages
    Case("prune_concept_word_200kb", ("prune", "--concept", LONG_WORD, "--out", "{out}"), ("--concept", "too long")),
    Case("generate_prompt_200kb", (*GEN, "--prompt", LONG_WORD, "--out", "{case}/g.png"), ("--prompt", "too long")),
    Case("revive_pickle_without_allow_pickle", ("revive", "--unet", "{case}/m.pt", "--out", "{out}"),
         ("{case}/m.pt", "--allow-pickle"), setup=_torch_pickle),
    Case("revive_malicious_pickle_with_allow_pickle", ("revive", "--unet", "{case}/evil.pt", "--out", "{out}",
                                                       "--allow-pickle"), ("{case}/evil.pt", "refused"),
         setup=_evil_pickle, never=("weights_only=False", "weights_only` set to `False", "pwned")),
    Case("revive_random_bytes_pickle_with_allow_pickle", ("revive", "--unet", "{case}/junk.pt", "--out", "{out}",
                                                          "--allow-pickle"), ("{case}/junk.pt",),
         setup=_write("junk.pt", b"garbage" * 20), never=("weights_only=False", "weights_only` set to `False")),
    # ---- kept from the cases that passed before
    Case("revive_truncated_safetensors", ("revive", "--unet", "{case}/cut.safetensors", "--out", "{out}"),
         ("{case}/cut.safetensors", "truncated or corrupt"), setup=_truncated),
    Case("revive_random_bytes_safetensors", ("revive", "--unet", "{case}/r.safetensors", "--out", "{out}"),
         ("{case}/r.safetensors", "not a readable safetensors"), setup=_write("r.safetensors", os.urandom(4096))),
    Case("revive_nan_checkpoint", ("revive", "--unet", "{case}/nan.safetensors", "--out", "{out}"),
         ("{case}/nan.safetensors", "NaN or Inf"), setup=_write_state(Path("nan.safetensors"), _nan)),
    Case("revive_not_a_checkpoint", ("revive", "--unet", "{case}/notes.txt", "--out", "{out}"),
         ("{case}/notes.txt", "not a checkpoint"), setup=_write("notes.txt", "hello")),
    Case("revive_missing_checkpoint", ("revive", "--unet", "{case}/nope", "--out", "{out}"),
         ("{case}/nope", "no such file")),
    Case("revive_unknown_layer_pattern", ("revive", "--unet", "{unet}", "--out", "{out}", "--layers",
                                          "*ff.net.22.weight"), ("{unet}", "matches no parameter")),
    Case("revive_unpruned_checkpoint", ("revive", "--unet", "{sd}", "--out", "{out}"), ("{sd}", "nothing to revive")),
    Case("revive_oracle_without_reference", ("revive", "--unet", "{unet}", "--out", "{out}", "--magnitude",
                                             "oracle_sign"), ("--magnitude oracle_sign", "--reference")),
    Case("revive_top_ratio_out_of_range", ("revive", "--unet", "{unet}", "--out", "{out}", "--top-ratio", "1.5"),
         ("--top-ratio", "(0, 1]")),
    Case("revive_unknown_method", ("revive", "--unet", "{unet}", "--out", "{out}", "--method", "magic"),
         ("--method", "invalid choice")),
    Case("revive_reference_shape_mismatch", ("revive", "--unet", "{unet}", "--out", "{out}", "--reference",
                                             "{case}/ref.safetensors"), ("reference", "shape"),
         setup=_wrong_reference),
    Case("revive_masks_wrong_name", ("revive", "--unet", "{unet}", "--out", "{out}", "--masks",
                                     "{case}/masks.safetensors"), ("{case}/masks.safetensors", "names no parameter"),
         setup=_masks(lambda m: {"nope.weight": next(iter(m.values()))})),
    Case("obfuscate_masks_wrong_shape", ("obfuscate", "--unet", "{st}", "--masks", "{case}/masks.safetensors",
                                         "--out", "{out}"), ("{case}/masks.safetensors", "has shape"),
         setup=_masks(lambda m: {k: torch.ones(3, 3, dtype=torch.uint8) for k in m})),
    Case("obfuscate_masks_empty", ("obfuscate", "--unet", "{st}", "--masks", "{case}/masks.safetensors", "--out",
                                   "{out}"), ("{case}/masks.safetensors", "empty"),
         setup=_masks(lambda m: {k: torch.zeros_like(v) for k, v in m.items()})),
    Case("obfuscate_masks_not_boolean", ("obfuscate", "--unet", "{st}", "--masks", "{case}/masks.safetensors",
                                         "--out", "{out}"), ("{case}/masks.safetensors", "not boolean"),
         setup=_masks(lambda m: {k: v * 2 for k, v in m.items()})),
    Case("obfuscate_missing_masks", ("obfuscate", "--unet", "{st}", "--masks", "{case}/none.safetensors", "--out",
                                     "{out}"), ("{case}/none.safetensors", "no such masks file")),
    Case("obfuscate_scale_zero", ("obfuscate", "--unet", "{st}", "--masks", "{masks}", "--out", "{out}", "--scale",
                                  "0"), ("--scale", "> 0")),
    Case("obfuscate_scale_nan", ("obfuscate", "--unet", "{st}", "--masks", "{masks}", "--out", "{out}", "--scale",
                                 "nan"), ("--scale", "finite")),
    Case("obfuscate_lowrank_global_scope", ("obfuscate", "--unet", "{st}", "--masks", "{masks}", "--out", "{out}",
                                            "--method", "lowrank", "--scope", "global"), ("scope", "row or layer")),
    Case("prune_skill_ratio_out_of_range", ("prune", "--model", "{sd}", "--concept", "church", "--out", "{out}",
                                            "--skill-ratio", "1.5"), ("--skill-ratio", "(0, 1)")),
    Case("prune_timesteps_over_steps", ("prune", "--model", "{sd}", "--concept", "church", "--out", "{out}",
                                        "--steps", "3", "--timesteps", "5"), ("--timesteps", "--steps")),
    Case("prune_unknown_mini_concept", ("prune", "--concept", "dragon", "--out", "{out}", *FAST_PRUNE),
         ("'dragon'", "vocabulary")),
    Case("prune_prompts_without_columns", ("prune", "--model", "{sd}", "--prompts", "{case}/p.csv", "--out",
                                           "{out}", *FAST_PRUNE), ("{case}/p.csv", "`base` and `target`"),
         setup=_write("p.csv", "a,b\nx,y\n")),
    Case("generate_out_not_png", (*GEN, "--out", "{case}/g.jpg"), ("{case}/g.jpg", ".png")),
    Case("generate_unet_does_not_fit", (*GEN, "--unet", "{case}/other.safetensors", "--out", "{case}/g.png"),
         ("{case}/other.safetensors", "does not fit"), setup=_other_unet),
    Case("generate_n_zero", (*GEN[:5], "-n", "0", "--out", "{case}/g.png"), ("-n", ">= 1")),
    Case("generate_batch_size_zero", (*GEN, "--batch-size", "0", "--out", "{case}/g.png"), ("--batch-size", ">= 1")),
    Case("generate_seed_negative", (*GEN, "--seed", "-1", "--out", "{case}/g.png"), ("--seed", ">= 0")),
    Case("experiment_sd_objects_without_classifier", ("experiment", "rq1", "--model", "{sd}", "--concepts", "church",
                                                      "--out", "{out}"), ("--classifier", "is needed")),
    Case("experiment_sd_nudity_without_classifier", ("experiment", "rq4", "--model", "{sd}", "--concepts", "nudity",
                                                      "--out", "{out}"), ("--classifier", "measure nudity")),
    Case("experiment_sd_mixed_kinds", ("experiment", "rq1", "--model", "{sd}", "--concepts", "church", "Monet",
                                       "--out", "{out}"), ("--concepts", "not several kinds")),
    Case("evaluate_sd_fid_ref_without_fidelity", ("evaluate", "--model", "{sd}", "--concept", "church", "--classifier",
                                                  "{case}/r.safetensors", "--fid-ref", "{case}", "--out", "{out}"),
         ("--fid-ref", "--fidelity N")),
    Case("evaluate_sd_fidelity_without_scorer", ("evaluate", "--model", "{sd}", "--concept", "church",
                                                 "--classifier", "{case}/r.safetensors", "--fidelity", "4",
                                                 "--out", "{out}"), ("--fidelity", "--clip")),
    Case("evaluate_sd_unknown_concept", ("evaluate", "--model", "{sd}", "--concept", "star", "--out", "{out}"),
         ("--concept 'star'", "Stable Diffusion evaluation knows")),
    Case("evaluate_sd_objects_without_classifier", ("evaluate", "--model", "{sd}", "--concept", "church",
                                                    "--out", "{out}"), ("--classifier", "is needed")),
    Case("evaluate_sd_artists_without_clip", ("evaluate", "--model", "{sd}", "--concept", "Monet", "--out", "{out}"),
         ("--clip", "is needed")),
    Case("evaluate_sd_i2p_without_prompts", ("evaluate", "--model", "{sd}", "--concept", "nudity", "--nudity-sets",
                                             "ring-a-bell,i2p", "--out", "{out}"),
         ("--nudity-sets i2p", "no prompts given")),
    Case("evaluate_sd_mma_prompt_file_missing", ("evaluate", "--model", "{sd}", "--concept", "nudity",
                                                 "--nudity-sets", "mma", "--prompts-file", "mma={case}/none.csv",
                                                 "--out", "{out}"), ("{case}/none.csv", "no such prompt file")),
    Case("evaluate_sd_classifier_wrong_architecture", ("evaluate", "--model", "{sd}", "--concept", "church",
                                                       "--classifier", "{case}/resnet18.safetensors", "--out", "{out}",
                                                       "-n", "1", "--steps", "1"),
         ("{case}/resnet18.safetensors", "not a torchvision ResNet-50"), setup=_resnet18_file),
    Case("evaluate_sd_clip_wrong_architecture", ("evaluate", "--model", "{sd}", "--concept", "Monet", "--clip",
                                                 "{case}/bert", "--out", "{out}", "-n", "1", "--steps", "1"),
         ("{case}/bert/config.json", "not a CLIP model"), setup=_write("bert/config.json", '{"model_type": "bert"}')),
    Case("evaluate_unknown_concept", ("evaluate", "--concept", "dragon", "--out", "{out}"),
         ("'dragon'", "unknown concept")),
    Case("experiment_unknown_name", ("experiment", "rq9"), ("'rq9'", "rq1, rq2, rq3, rq4")),
    Case("experiment_resume_missing_folder", ("experiment", "rq3", "--resume", "{case}/none"),
         ("{case}/none", "not an experiment run folder")),
    Case("experiment_eval_steps_zero", ("experiment", "rq1", "--eval-steps", "0"), ("--eval-steps", "[1, 1000]")),
    Case("experiment_guidance_negative", ("experiment", "rq1", "--guidance", "-1"), ("--guidance", ">= 0")),
    Case("demo_resume_with_quick", ("demo", "--resume", "{case}/run", "--quick"), ("--resume", "own settings")),
    # the first generation was removed, and --generation with it: the subcommand names the unknown option
    Case("train_mini_generation_1", ("train-mini", "--generation", "1", "--workdir", "{case}/w"),
         ("--generation 1", "unrecognized arguments", "revival train-mini --help")),
    Case("train_mini_device_bogus", ("train-mini", "--device", "bogus", "--workdir", "{case}/w"),
         ("--device", "bogus")),
    Case("train_mini_device_cuda_without_cuda", ("train-mini", "--device", "cuda", "--workdir", "{case}/w"),
         ("--device cuda", "CUDA is not available"), needs_no_cuda=True, unbounded=True),
    Case("train_mini_out_under_a_regular_file", ("train-mini", "--workdir", "{case}/w", "--out", "{case}/f.txt/p"),
         ("{case}/f.txt", "is a file"), setup=_write("f.txt", "x"), unbounded=True),
    Case("train_mini_unknown_variant", ("train-mini", "--variant", "huge", "--workdir", "{case}/w"),
         ("--variant", "huge")),
    Case("train_mini_compile_maybe", ("train-mini", "--compile", "maybe", "--workdir", "{case}/w"),
         ("--compile", "maybe")),
]
