"""Quick quality check of a UNet warm start (issue 14 progress): python wip/issue14/quality_check.py WARM.safetensors N."""
import sys, torch, numpy as np
sys.path.insert(0, "benchmarks")
torch.set_num_threads(1)
from pathlib import Path
from safetensors.torch import load_file
from diffusers import AutoencoderKL
from transformers import CLIPTextModel
from revival.minisd.unet import build_unet
from revival.minisd.pipeline import assemble
from revival.minisd import world
from revival.minisd.evaluator import load_evaluator
from revival.evaluate.intervals import pooled
from mini_design_screen import Scorer
W = Path("/work/minisd-work")
unet = build_unet("base"); sd = load_file(sys.argv[1])
unet.load_state_dict({k[5:]: v.float() for k, v in sd.items() if k.startswith("unet.")})
pipe = assemble(AutoencoderKL.from_pretrained(W / "vae-final", torch_dtype=torch.float32),
                CLIPTextModel.from_pretrained(W / "text-final", dtype=torch.float32), unet.eval())
sc = Scorer(pipe, load_evaluator(W / "evaluator.safetensors"), int(sys.argv[2]), 20, 5.0)
for fam, cs in (("object", world.OBJECTS), ("style", world.STYLES), ("attribute", world.ATTRIBUTES)):
    acc = sc.accuracy(fam, cs)
    p = pooled(list(acc.values()))
    print(fam, round(p["accuracy"], 3), p["ci95"], {c: round(a["accuracy"], 2) for c, a in acc.items()}, flush=True)
