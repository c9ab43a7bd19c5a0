"""A model folder's files and what its JSON says, read without torch: checks that can run before loading.

`mini` names the bundled model, the miniature Stable Diffusion (a plain `StableDiffusionPipeline` folder that
draws the 64x64 world, `revival.minisd`); anything else is a local diffusers pipeline folder, or a Hugging
Face Hub id (`owner/name`), fetched by diffusers into the user's cache as `from_pretrained` does
(HF_HUB_OFFLINE honoured: offline, only a cached copy is used).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from revival.errors import RevivalError
from revival.jsonfiles import read_json

MINI_PATH = Path(__file__).parent / "minisd" / "assets" / "pipeline"
FIRST_GENERATION_CLASS = "MiniPipeline"  # the removed first generation's 32x32 pipeline
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")


def hub_snapshot(repo_id: str) -> Path:
    """The local folder of Hub pipeline `repo_id` in the user's cache, fetched by diffusers when needed."""
    import logging

    from diffusers import DiffusionPipeline

    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    try:
        logging.disable(logging.WARNING)
        folder = DiffusionPipeline.download(repo_id)
    except Exception as e:  # noqa: BLE001 - any failure to fetch is one line for the user
        first = (str(e).strip() or type(e).__name__).splitlines()[0]
        why = ("HF_HUB_OFFLINE is set and it is not in the cache" if offline
               else "no local folder of that name, and fetching it from the Hub failed")
        raise RevivalError(f"{repo_id}: cannot load this model: {why} ({first})") from None
    finally:
        logging.disable(logging.NOTSET)
    return Path(folder)


def resolve_model_path(model: str | Path) -> Path:
    """Folder of a model name (`mini`) or path; one-line error when it is not a diffusers pipeline."""
    path = MINI_PATH if str(model) == "mini" else Path(model)
    if not path.exists() and str(model) != "mini" and HUB_ID.fullmatch(str(model)):
        path = hub_snapshot(str(model))
    if not path.exists():
        hint = " (the bundled weights are missing: run `revival train-mini`)" if str(model) == "mini" else ""
        raise RevivalError(f"{path}: no such model folder{hint}")
    if not path.is_dir():
        raise RevivalError(f"{path}: not a folder (expected a diffusers pipeline folder with model_index.json)")
    if not (path / "model_index.json").is_file():
        raise RevivalError(f"{path}: not a diffusers pipeline folder (model_index.json is missing)")
    if model_index(path).get("_class_name") == FIRST_GENERATION_CLASS:
        raise RevivalError(f"{path}: a first-generation mini model ({FIRST_GENERATION_CLASS}): first-generation "
                           "folders are no longer supported; the bundled model is `mini`, or train one with "
                           "`revival train-mini`")
    return path


def model_index(path: Path) -> dict:
    """The parsed model_index.json of pipeline folder `path`."""
    return read_json(path / "model_index.json")


def bundled_world(path: Path) -> str | None:
    """`minisd` when the folder draws the bundled world (whose evaluator ships with revival), else None: a
    StableDiffusionPipeline whose word-level tokenizer knows exactly the 64x64 world's words, as the bundled model
    and every folder `revival train-mini` exports."""
    tok = path / "tokenizer" / "tokenizer.json"
    if model_index(path).get("_class_name") != "StableDiffusionPipeline" or not tok.is_file():
        return None
    vocab = read_json(tok).get("model", {}).get("vocab")
    if not isinstance(vocab, dict):
        return None
    from revival.minisd.world import vocabulary

    words = {w for w in vocab if not (w.startswith("<") and w.endswith(">"))}
    return "minisd" if words == set(vocabulary()) else None


def check_configs(path: Path) -> None:
    """Parse every component's JSON config of pipeline folder `path`: one line naming a broken one."""
    for name in model_index(path):
        if not name.startswith("_") and (path / name).is_dir():
            for cfg in sorted((path / name).glob("*.json")):
                read_json(cfg)


def _component_config(path: Path, name: str, file: str = "config.json") -> dict:
    cfg = path / name / file
    return read_json(cfg) if cfg.is_file() else {}


# Pipeline class -> family, and each family's published sampling defaults (steps, guidance, batch size).
CLASS_FAMILIES = {"StableDiffusionPipeline": "sd1", "StableDiffusionXLPipeline": "sdxl",
                  "StableDiffusion3Pipeline": "sd3", "FluxPipeline": "flux"}
FAMILY_SAMPLING = {"sd1": (50, 7.5, 8), "sd2": (50, 7.5, 8), "sdxl": (50, 5.0, 4), "sd3": (28, 7.0, 4),
                   "flux": (28, 3.5, 2)}


# A bundled world's own sampling (steps, guidance, batch size). minisd samples at guidance 3: on fresh seeds its
# worst objects draw better than at 5 (benchmarks/results/mini_guidance.json); its quality gates are measured at it.
WORLD_SAMPLING = {"minisd": (20, 3.0, 64)}


def folder_family(path: Path) -> str:
    """The family of a pipeline folder from its model_index.json (sd1 for SD 1.x and 2.x alike), else `other`."""
    return CLASS_FAMILIES.get(model_index(path).get("_class_name"), "other")


def default_batch(path: Path, batch_size: int | None) -> int:
    """`batch_size`, or the family's default."""
    return batch_size or FAMILY_SAMPLING.get(folder_family(path), FAMILY_SAMPLING["sd1"])[2]


def image_size(path: Path, height: int | None = None, width: int | None = None) -> tuple[int, int]:
    """(height, width) of the images the pipeline generates (given ones, else from its denoiser and VAE configs)."""
    index = model_index(path)
    component = "transformer" if "transformer" in index and "unet" not in index else "unet"
    default = 128 if folder_family(path) == "flux" else 64  # Flux's pipeline default, in latent pixels
    size = _component_config(path, component).get("sample_size", default)
    sizes = [size, size] if isinstance(size, int) else size
    if not (isinstance(sizes, list) and len(sizes) == 2 and all(isinstance(s, int) and s > 0 for s in sizes)):
        raise RevivalError(f"{path / component / 'config.json'}: sample_size must be a positive integer or a pair")
    h, w = sizes
    if "vae" in index:
        blocks = _component_config(path, "vae").get("block_out_channels", [0, 0, 0, 0])
        factor = 2 ** (len(blocks) - 1) if isinstance(blocks, list) and blocks else 8
        h, w = h * factor, w * factor
    return height or h, width or w


def train_timesteps(path: Path) -> int:
    """The most denoising steps the pipeline's scheduler can sample: num_train_timesteps, less steps_offset under
    "leading" spacing (DDIM's default, whose last timestep is then num_train_timesteps and out of range)."""
    cfg = _component_config(path, "scheduler", "scheduler_config.json")
    most = int(cfg.get("num_train_timesteps", 1000))
    if cfg.get("timestep_spacing", "leading") == "leading":
        most -= int(cfg.get("steps_offset", 0) or 0)
    return most


def check_steps(path: Path, steps: int | None, option: str = "--steps") -> None:
    """One-line error when `steps` exceeds what the model's scheduler can sample."""
    if steps is not None and steps > (most := train_timesteps(path)):
        raise RevivalError(f"{option} {steps}: the scheduler of {path} can sample at most {most} steps; "
                           f"use at most {most}")
