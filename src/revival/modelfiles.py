"""A model folder's files and what its JSON says, read without torch: checks that can run before loading.

`mini` names the bundled pipeline; anything else is a local diffusers pipeline folder.
"""

from __future__ import annotations

from pathlib import Path

from revival.errors import RevivalError
from revival.jsonfiles import read_json

MINI_PATH = Path(__file__).parent / "mini" / "assets" / "mini-pipeline"
MINI_CLASS = "MiniPipeline"


def resolve_model_path(model: str | Path) -> Path:
    """Folder of a model name (`mini`) or path; one-line error when it is not a diffusers pipeline."""
    path = MINI_PATH if str(model) == "mini" else Path(model)
    if not path.exists():
        hint = " (the bundled weights are missing: run `revival train-mini`)" if str(model) == "mini" else ""
        raise RevivalError(f"{path}: no such model folder{hint}")
    if not path.is_dir():
        raise RevivalError(f"{path}: not a folder (expected a diffusers pipeline folder with model_index.json)")
    if not (path / "model_index.json").is_file():
        raise RevivalError(f"{path}: not a diffusers pipeline folder (model_index.json is missing)")
    return path


def model_index(path: Path) -> dict:
    """The parsed model_index.json of pipeline folder `path`."""
    return read_json(path / "model_index.json")


def is_mini(path: Path) -> bool:
    """True when the folder holds the bundled mini pipeline class (whose evaluators ship with revival)."""
    return model_index(path).get("_class_name") == MINI_CLASS


def check_configs(path: Path) -> None:
    """Parse every component's JSON config of pipeline folder `path`: one line naming a broken one."""
    for name in model_index(path):
        if not name.startswith("_") and (path / name).is_dir():
            for cfg in sorted((path / name).glob("*.json")):
                read_json(cfg)


def _component_config(path: Path, name: str, file: str = "config.json") -> dict:
    cfg = path / name / file
    return read_json(cfg) if cfg.is_file() else {}


def image_size(path: Path) -> tuple[int, int]:
    """(height, width) of the images the pipeline generates, from its UNet (and VAE) configs."""
    index = model_index(path)
    size = _component_config(path, "unet").get("sample_size", 64)
    sizes = [size, size] if isinstance(size, int) else size
    if not (isinstance(sizes, list) and len(sizes) == 2 and all(isinstance(s, int) and s > 0 for s in sizes)):
        raise RevivalError(f"{path / 'unet' / 'config.json'}: sample_size must be a positive integer or a pair")
    h, w = sizes
    if "vae" in index:
        blocks = _component_config(path, "vae").get("block_out_channels", [0, 0, 0, 0])
        factor = 2 ** (len(blocks) - 1) if isinstance(blocks, list) and blocks else 8
        h, w = h * factor, w * factor
    return h, w


def train_timesteps(path: Path) -> int:
    """num_train_timesteps of the pipeline's scheduler: the most denoising steps a sampler can take."""
    cfg = _component_config(path, "scheduler", "scheduler_config.json")
    return int(cfg.get("num_train_timesteps", 1000))


def check_steps(path: Path, steps: int | None, option: str = "--steps") -> None:
    """One-line error when `steps` exceeds what the model's scheduler can sample."""
    if steps is not None and steps > (most := train_timesteps(path)):
        raise RevivalError(f"{option} {steps}: the scheduler of {path} was trained with {most} steps; "
                           f"use at most {most}")
