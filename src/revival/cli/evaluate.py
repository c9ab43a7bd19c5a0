"""`revival evaluate`: how erased a concept is, and how intact the rest, on the mini model or a Stable Diffusion model.

A bundled world's model (the mini model, or a miniature Stable Diffusion from `revival train-mini`):
its family's concepts, classified by that world's evaluator. Any other pipeline (SD
1.x/2.x, SDXL, SD3, Flux, local or from the Hub): the paper's protocol (`revival.evaluate.sd_eval`) with
the evaluator files the user gives (ResNet-50 weights, a CLIP model, NudeNet).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from revival import budget, catalog, validate
from revival.cli._common import WORD_LIMIT, add_evaluator_args, add_model_args, add_sampling_args, command_line
from revival.errors import RevivalError
from revival.modelfiles import (
    WORLD_SAMPLING,
    bundled_world,
    check_steps,
    default_batch,
    image_size,
    resolve_model_path,
)
from revival.outputs import staged_folder

GRID_SCALE = 4


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="how erased a concept is and how intact the rest (mini model or Stable "
                       "Diffusion), with 95%% intervals",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="the bundled mini model: generate N seeded images (image i: seed+i) of the "
                       "concept's prompts and of every\nother concept of its family, classify them with the world's "
                       "evaluator. Families: object ('a {object}\nin a {scene}'), style ('a {object} in the style "
                       "of {style}'), attribute (e.g. 'a photo of a striped\n{object}'; preserved = object accuracy "
                       f"on the control '{catalog.CONTROL}' prompts 'a photo of a {{object}}').\n\n"
                       "Stable Diffusion (any other --model): the paper's protocol, every figure with a 95% "
                       "interval:\n  objects (an Imagenette class, e.g. church): 'an image of a {class}' with "
                       "per-row seeds, ResNet-50\n    top-1 (--classifier): erased and preserved accuracy\n"
                       "  artists (Van Gogh, Monet, Pablo Picasso, Salvador Dali, Leonardo Da Vinci): 50 prompts "
                       "each,\n    CLIP score (--clip), and with --unet the pairwise score against the model's own "
                       "weights\n  nudity: Ring-A-Bell (shipped), I2P and MMA (--prompts-file i2p=PATH), NudeNet "
                       "at --nudity-threshold\n  --fidelity N: N COCO captions, CLIP score\n"
                       "The safety checker is off unless --safety-checker (recorded). Writes DIR/result.json and "
                       "DIR/grid.png.\n\nexamples:\n  revival evaluate --concept star --out runs/eval\n"
                       "  revival evaluate --model runwayml/stable-diffusion-v1-5 --unet runs/church/revived/unet "
                       "--concept church \\\n    --classifier resnet50-11ad3fa6.pth --out runs/church/eval")
    add_model_args(p)
    add_sampling_args(p)
    p.add_argument("--concept", required=True, type=validate.text(WORD_LIMIT),
                   help="concept word, e.g. star, neon, striped")
    p.add_argument("--family", choices=catalog.FAMILY_NAMES, default=None,
                   help="concept family (inferred from the word when omitted)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("-n", "--num-images", type=validate.positive_int, default=None,
                   help="images per concept (mini, default 32); Stable Diffusion: prompts per class, artist or "
                   "nudity set (default: all, as the paper)")
    p.add_argument("--seed", type=validate.seed, default=0, help="image i of every concept uses seed+i")
    p.add_argument("--preserved", type=validate.positive_int, default=None,
                   help="bundled mini model: preserved accuracy pools a seeded sample of this many other concepts "
                   "of the family (the sample `experiment --preserved` draws; default: every other concept)")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder of ours")
    p.add_argument("--save-images", action="store_true", help="also write DIR/images/<concept>.png for every concept")
    sd = p.add_argument_group("Stable Diffusion evaluators (never downloaded by revival unless a Hub id is given)")
    add_evaluator_args(sd)
    sd.add_argument("--fidelity", type=validate.integer(0, 480), default=0,
                    help="also the fidelity on this many COCO captions (the paper: 480): CLIP score with --clip, FID "
                    "with --fid-ref")
    sd.add_argument("--fid-ref", default=None,
                    help="fidelity: FID against this folder of reference images (e.g. the COCO val2014 images) or an "
                    ".npz of their statistics (mu, sigma), by clean-fid (pip install 'revival[fid]')")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    model_path = resolve_model_path(args.model)
    world_name = bundled_world(model_path)
    if world_name is None:
        if args.preserved is not None:
            raise RevivalError("--preserved applies to a bundled mini model only (a Stable Diffusion model is "
                               "measured on the paper's classes)")
        return run_sd(args, model_path)
    args.num_images = args.num_images or 32
    steps, guidance, batch = WORLD_SAMPLING[world_name]
    args.steps, args.batch_size = args.steps or steps, args.batch_size or batch
    args.guidance = guidance if args.guidance is None else args.guidance
    check_steps(model_path, args.steps)
    from revival.evaluate.mini_eval import families, measured_concepts, resolve_concept

    concept, family = resolve_concept(args.concept, args.family, world_name)
    args.measured = (None if args.preserved is None
                     else measured_concepts(world_name, family, concept, args.preserved, args.seed))
    n_total = args.num_images * len(args.measured or families(world_name).get(family).concepts)
    grids = ((args.num_images, GRID_SCALE),) + (((n_total, 1),) if args.save_images else ())
    budget.check_images(n_total, args.batch_size, image_size(model_path), grids, n_value=args.num_images)
    out = Path(args.out)
    with staged_folder(out, overwrite=args.overwrite, inputs=[args.unet]) as tmp:
        summary = _evaluate(args, out, tmp, concept, family, world_name)
    print(summary)
    return 0


def _evaluate(args: argparse.Namespace, out: Path, tmp: Path, concept: str, family: str, world_name: str) -> str:
    """Generate, classify and write result.json and grid.png into `tmp`; the summary line."""
    from revival.evaluate.generate import make_grid
    from revival.evaluate.mini_eval import concept_accuracy, concept_intervals, evaluate_family
    from revival.models import load_pipeline
    from revival.results import base_result, write_result
    from revival.worlds import world

    device = validate.resolve_device(args.device)
    t0 = time.time()
    pipe = load_pipeline(args.model, args.unet, device=device, dtype=args.dtype, allow_pickle=args.allow_pickle,
                         safety_checker=args.safety_checker)
    evaluator = world(world_name).load_evaluator()
    t1 = time.time()
    ev = evaluate_family(pipe, family, args.num_images, args.seed, args.steps, args.guidance, args.batch_size,
                         evaluator=evaluator, progress=True, concepts=args.measured)
    t2 = time.time()
    outputs = {"result": str(out / "result.json"), "grid": str(out / "grid.png")}
    make_grid(ev.images[concept], scale=GRID_SCALE).save(tmp / "grid.png")
    if args.save_images:
        (tmp / "images").mkdir()
        for c, imgs in ev.images.items():
            make_grid(imgs, scale=1).save(tmp / "images" / f"{c}.png")
        outputs["images"] = str(out / "images")
    config = {"concept": concept, "family": family, "world": world_name, "n_per_concept": args.num_images,
              "seed": args.seed, "preserved": args.preserved,
              "steps": args.steps, "guidance": args.guidance, "batch_size": args.batch_size,
              "prompts": {c: sorted(set(p)) for c, p in ev.prompts.items()}}
    result = base_result(command_line(), config, {"model": args.model if args.model != "mini" else None,
                                                  "unet": args.unet,
                                                  "evaluator": world(world_name).evaluator_path})
    result["accuracy"] = concept_accuracy(ev.per_concept, concept)
    result["per_concept"] = ev.per_concept
    result["intervals"] = {**concept_intervals(ev.shares, concept), "per_concept": ev.shares,
                           "method": "Wilson 95% over images; preserved pools the other concepts' images"}
    result["outputs"] = outputs
    result["timings_s"] = {"load": round(t1 - t0, 2), "generate_and_classify": round(t2 - t1, 2)}
    write_result(result, tmp / "result.json")
    acc = result["accuracy"]
    ci = result["intervals"]
    return (f"{concept} ({family}): target {acc['target']:.3f} {ci['target']['ci95']}, preserved "
            f"{acc['preserved']:.3f} {ci['preserved']['ci95']} (95% intervals) -> {outputs['result']}")


# ------------------------------------------------------------------------------------------ Stable Diffusion
def run_sd(args: argparse.Namespace, model_path: Path) -> int:
    """The paper's protocol on a Stable Diffusion-family pipeline: check every input, then generate and score."""
    from revival.evaluate.sd_eval import nudity_sets, protocol_of

    concept, protocol = protocol_of(args.concept, args.family)
    check_steps(model_path, args.steps)
    files = dict(args.prompts_file)
    sets = nudity_sets(tuple(s.strip() for s in args.nudity_sets.split(",") if s.strip()), files, args.seed) \
        if protocol == "attribute" else {}
    if protocol == "object" and not args.classifier:
        raise RevivalError("--classifier is needed to evaluate objects: torchvision's ResNet-50 weights file "
                           "(resnet50-11ad3fa6.pth, IMAGENET1K_V2)")
    if protocol == "style" and not args.clip:
        raise RevivalError("--clip is needed to evaluate artists: a CLIP model folder or Hub id (the paper: "
                           "openai/clip-vit-base-patch32)")
    if args.fidelity and not (args.clip or args.fid_ref):
        raise RevivalError("--fidelity needs --clip (CLIP score) and/or --fid-ref (FID)")
    if args.fid_ref is not None:
        if not args.fidelity:
            raise RevivalError("--fid-ref scores the COCO-caption images: give --fidelity N (the paper: 480)")
        if not Path(args.fid_ref).exists():
            raise RevivalError(f"{args.fid_ref}: no such folder or statistics file (--fid-ref)")
        from revival.evaluate.sd_eval import fid_library

        fid_library()  # one line now, before anything is generated, when clean-fid is missing
    n = args.num_images
    images = {"object": 13 * min(n or 500, 500), "style": 5 * min(n or 50, 50) + (min(n or 50, 50) if args.unet else 0),
              "attribute": sum(min(len(s), n or len(s)) for s in sets.values())}[protocol] + args.fidelity
    budget.check_images(images, default_batch(model_path, args.batch_size),
                        image_size(model_path, args.height, args.width), n_value=n or images)
    out = Path(args.out)
    with staged_folder(out, overwrite=args.overwrite,
                       inputs=[model_path, args.unet, args.classifier, args.nudenet_model, args.fid_ref,
                               *files.values()]) as tmp:
        summary = _evaluate_sd(args, out, tmp, model_path, concept, protocol, sets)
    print(summary)
    return 0


def _load_evaluators(args: argparse.Namespace, protocol: str, device: str):
    """The evaluators the protocol needs, each a one-line error when its file is missing or of another kind."""
    from revival.checkpoints import sha256_file
    from revival.evaluate.sd_eval import Evaluators, nudenet_record
    from revival.evaluate.sd_evaluators import SD_EVALUATORS
    from revival.models import quiet_libraries

    quiet_libraries()
    ev = Evaluators()
    if protocol == "object":
        ev.classifier = SD_EVALUATORS.get("resnet50")(args.classifier, device=device, allow_pickle=args.allow_pickle)
        path = Path(args.classifier)
        ev.records["classifier"] = {"name": "ResNet-50 (torchvision layout), top-1", "path": str(path),
                                    "sha256": sha256_file(path) if path.is_file() else None}
    if protocol == "style" or (args.fidelity and args.clip):
        ev.clip = SD_EVALUATORS.get("clip")(args.clip, device=device)
        vision = ev.clip.model.config.vision_config
        ev.records["clip"] = {"name": "CLIP image-text cosine", "model": str(args.clip),
                              "vision": f"ViT, patch {vision.patch_size}, {vision.image_size} px"}
    if protocol == "attribute":
        ev.nudity = SD_EVALUATORS.get("nudenet")(args.nudenet_model, threshold=args.nudity_threshold)
        ev.records["nudenet"] = nudenet_record(ev.nudity, args.nudenet_model)
    return ev


def _evaluate_sd(args: argparse.Namespace, out: Path, tmp: Path, model_path: Path, concept: str, protocol: str,
                 sets: dict) -> str:
    """Generate and score under the paper's protocol; write result.json and grid.png into `tmp`; the summary."""
    from tqdm import tqdm

    from revival.evaluate.generate import make_grid
    from revival.evaluate.sd_eval import evaluate_sd
    from revival.families import denoiser, sampling
    from revival.models import load_info, load_pipeline, load_unet_weights
    from revival.results import base_result, write_result

    device = validate.resolve_device(args.device)
    t0 = time.time()
    evaluators = _load_evaluators(args, protocol, device)
    pipe = load_pipeline(model_path, None, device=device, dtype=args.dtype, allow_pickle=args.allow_pickle,
                         safety_checker=args.safety_checker)
    original = None
    if args.unet is not None:
        model = denoiser(pipe)
        if protocol == "style":  # the pairwise score compares with the model's own weights
            original = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        load_unet_weights(model, args.unet, allow_pickle=args.allow_pickle)
    plan = sampling(pipe, args.steps, args.guidance, args.batch_size, args.height, args.width)
    t1 = time.time()
    figures, images = evaluate_sd(pipe, concept, protocol, evaluators, plan, n=args.num_images, seed=args.seed,
                                  nudity=sets, fidelity=args.fidelity, fid_reference=args.fid_ref, device=device,
                                  original=original, progress=True,
                                  log=lambda s: tqdm.write(s))
    t2 = time.time()
    shown = images.pop("target", next(iter(images.values())))[:16]
    make_grid(shown, scale=GRID_SCALE if shown.shape[1] <= 64 else 1).save(tmp / "grid.png")
    outputs = {"result": str(out / "result.json"), "grid": str(out / "grid.png")}
    if args.save_images:
        (tmp / "images").mkdir()
        for name, imgs in images.items():
            make_grid(imgs, scale=1).save(tmp / "images" / f"{name}.png")
        outputs["images"] = str(out / "images")
    info = load_info(pipe)
    config = {"concept": concept, "protocol": protocol, "n": args.num_images, "seed": args.seed,
              "sampling": plan.record(), "pipeline": info, "safety_checker": info.get("safety_checker"),
              "nudity_sets": list(sets), "fidelity_captions": args.fidelity, "evaluators": evaluators.records}
    result = base_result(command_line(), config, {"model": model_path, "unet": args.unet,
                                                  "classifier": args.classifier, "nudenet_model": args.nudenet_model,
                                                  **{f"prompts_{k}": v for k, v in dict(args.prompts_file).items()}})
    result.update({k: v for k, v in figures.items() if k not in ("protocol", "concept", "detail")})
    result["intervals"] = {"method": "95%: Wilson for shares of images, Student's t for mean CLIP scores"}
    result["outputs"] = outputs
    result["timings_s"] = {"load": round(t1 - t0, 2), "generate_and_score": round(t2 - t1, 2)}
    write_result(result, tmp / "result.json")
    return f"{concept} ({protocol}): {_headline(figures)} (95% intervals) -> {outputs['result']}"


def _headline(figures: dict) -> str:
    if "accuracy" in figures:
        acc = figures["accuracy"]
        pre = acc["preserved"]
        return (f"erased-class accuracy {acc['target']['accuracy']:.3f} {acc['target']['ci95']}, preserved "
                + (f"{pre['accuracy']:.3f} {pre['ci95']}" if pre else "n/a"))
    if "clip_score" in figures:
        t = figures["clip_score"]["target"]
        pw = figures.get("pairwise")
        return (f"CLIP score {t['mean']:.4f} {t['ci95']}"
                + (f", pairwise {pw['share']:.3f} {pw['ci95']}" if pw else ""))
    parts = [f"{name}: {v['images_with_nudity']}/{v['n']} flagged {v['share']['ci95']}"
             for name, v in figures.get("nudity", {}).items()]
    return "; ".join(parts) or "no figures"
