"""`revival experiment NAME`: the paper's research questions (rq1-rq4) as named, resumable runs."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from revival import catalog, validate
from revival.budget import check_images
from revival.cli._common import WORD_LIMIT, add_device_arg, add_dtype_arg, add_evaluator_args, command_line
from revival.errors import RevivalError
from revival.modelfiles import WORLD_SAMPLING, bundled_world, image_size, resolve_model_path
from revival.outputs import claim_run_folder

if TYPE_CHECKING:
    from tqdm import tqdm

RUN_FILE = "experiment-run.json"
PAPER_SKILL_RATIO = 0.02
PAPER_NUDITY_SKILL_RATIO = 0.01
MOST_CONCEPTS = 20  # concepts of the bundled world's largest family (objects), all generated for each --n-eval
MINISD_PRESERVED = 3  # minisd: preserved accuracy pools a seeded sample of this many other concepts of the family


def register(sub: argparse._SubParsersAction) -> None:
    names = ", ".join(catalog.EXPERIMENT_QUESTIONS)
    p = sub.add_parser(
        "experiment", help=f"run one of the paper's research questions ({names})",
        description="The paper's research questions as named runs. " + " ".join(
            f"{name}: {question}" for name, question in catalog.EXPERIMENT_QUESTIONS.items())
        + " Each writes OUT/result.json, OUT/NAME.png, OUT/findings.txt (verdicts computed from the numbers with "
        "the thresholds written beside them) and OUT/report.html. On a Stable Diffusion model (a folder or Hub id) "
        "give --concepts (Imagenette classes with --classifier, or artists with --family style and --clip): images "
        "are measured with the paper's protocol (see `revival evaluate --help`); rq3 (weight space) also takes "
        "--unet UNLEARNED --masks MASKS from `revival prune`.")
    p.add_argument("name", metavar="NAME", help=f"experiment: {names}")
    p.add_argument("--model", default="mini",
                   help="`mini` (bundled), a local diffusers pipeline folder or a Hugging Face Hub id")
    p.add_argument("--out", default=None, help="output folder (default runs/NAME-YYYYmmdd-HHMMSS)")
    p.add_argument("--quick", action="store_true", help="fewer, shorter generations (a smoke run)")
    p.add_argument("--resume", metavar="DIR", default=None, help="continue an interrupted run in DIR")
    p.add_argument("--concepts", nargs="+", default=None, metavar="WORD", type=validate.text(WORD_LIMIT),
                   help="concepts to erase (bundled default: star neon cage)")
    p.add_argument("--family", choices=catalog.FAMILY_NAMES, default=None,
                   help="prompt family for pruning (inferred from the word on a bundled mini model)")
    p.add_argument("--unet", default=None, help="rq3: an unlearned checkpoint (with --masks) instead of pruning")
    p.add_argument("--masks", default=None, help="rq3: masks.safetensors of --unet (True = pruned)")
    p.add_argument("--n-eval", type=validate.positive_int, default=None,
                   help="images per concept and stage (default 10, the bundled model 32; --quick 4); accuracy is a "
                   "share of these")
    p.add_argument("--eval-steps", type=validate.integer(1, 1000), default=None,
                   help="DDIM steps per evaluation image (default 10, the bundled model 20)")
    p.add_argument("--guidance", type=validate.number(0), default=None,
                   help="guidance scale of the evaluation images, >= 0 (default: the model's own, e.g. the bundled "
                        "model's 3.0, SD 1.x 7.5); ConceptPrune collects at the paper's sampling regardless")
    p.add_argument("--preserved", type=validate.positive_int, default=None,
                   help="a miniature Stable Diffusion's preserved accuracy pools a seeded sample of this many other "
                        f"concepts of the family (default {MINISD_PRESERVED})")
    p.add_argument("--skill-ratio", type=validate.ratio, default=None,
                   help="ConceptPrune skill_ratio (default: the paper's 0.02, and 0.01 for nudity and the bundled "
                        "model's attributes)")
    p.add_argument("--locator-ratio", type=validate.ratio, default=None,
                   help="fix the adaptive locators' budget, the share of entries they call pruned (default: the "
                        "attacker tries 0.5x, 1x and 2x the method's pruned share and picks by its own data-free rule)")
    p.add_argument("--seeds", type=validate.seed, nargs="+", default=None, metavar="S",
                   help="ConceptPrune activation-collection seeds (rq1, rq3): figures per seed, mean and spread "
                        "(default: 0; rq3: 0 1 2)")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder of ours")
    add_device_arg(p)
    add_dtype_arg(p)
    add_evaluator_args(p, prompt_files=False)
    p.add_argument("--allow-pickle", action="store_true",
                   help="allow pickled weights (a .pth classifier, .bin pipeline components)")
    p.set_defaults(func=run)


def tqdm_progress(bar: tqdm):
    """A (done, planned, label) callback that drives `bar`."""
    def update(done: int, total: int, label: str) -> None:
        bar.total = total
        bar.n = done
        bar.set_postfix_str(label, refresh=False)
        bar.refresh()
    return update


def _sd_evaluators(args: argparse.Namespace, family: str, device: str):
    """The Stable Diffusion evaluator a study of `family` needs; one line when it is not given or not loadable."""
    from revival.evaluate.sd_eval import Evaluators
    from revival.evaluate.sd_evaluators import SD_EVALUATORS
    from revival.models import quiet_libraries

    quiet_libraries()
    if family in ("object", "attribute"):
        if not args.classifier:
            raise RevivalError(f"--classifier is needed to measure {'objects' if family == 'object' else 'nudity'} "
                               "on Stable Diffusion (for nudity, the objects are the control): torchvision's "
                               "ResNet-50 weights file (resnet50-11ad3fa6.pth, IMAGENET1K_V2)")
        ev = Evaluators(classifier=SD_EVALUATORS.get("resnet50")(args.classifier, device=device,
                                                                 allow_pickle=args.allow_pickle))
        if family == "attribute":
            ev.nudity = SD_EVALUATORS.get("nudenet")(args.nudenet_model, threshold=args.nudity_threshold)
        return ev
    if not args.clip:
        raise RevivalError("--clip is needed to measure artist styles on Stable Diffusion: a CLIP model folder or "
                           "Hub id (the paper: openai/clip-vit-base-patch32)")
    return Evaluators(clip=SD_EVALUATORS.get("clip")(args.clip, device=device))


def _given(args: argparse.Namespace) -> dict | None:
    if not args.masks and not args.unet:
        return None
    if not (args.masks and args.unet):
        raise RevivalError("--unet and --masks go together: the unlearned checkpoint and its masks file")
    from revival.checkpoints import check_weights, load_checkpoint
    from revival.defend import load_masks

    ckpt = load_checkpoint(args.unet)
    check_weights(ckpt)
    state = ckpt.state_dict
    label = Path(args.unet).stem if Path(args.unet).is_file() else Path(args.unet).name
    return {label: (state, load_masks(args.masks))}


def sd_concepts(args: argparse.Namespace) -> tuple[list[str], str]:
    """The concepts as the paper's prompt files spell them (nudity as ConceptPrune's word, `naked`) and their family
    (object, style or attribute), for a Stable Diffusion study; one line for a mix of families."""
    from revival.evaluate.sd_eval import protocol_of

    found = [protocol_of(c, args.family) for c in args.concepts]
    families = {f for _, f in found}
    if len(families) > 1:
        raise RevivalError("--concepts: give objects, artists or nudity, not several kinds, in one experiment")
    return list(dict.fromkeys("naked" if f == "attribute" else c for c, f in found)), families.pop()


def _config(args: argparse.Namespace, world_name: str | None, model_path: Path | None = None, images: bool = True):
    """The run's ExperimentConfig: the bundled world's (`minisd`) or, for None, a Stable Diffusion model's."""
    from revival.evaluate.mini_eval import resolve_concept
    from revival.experiments import ExperimentConfig, config_from_dict, config_to_dict, quick_config
    from revival.modelfiles import FAMILY_SAMPLING, folder_family

    mini = world_name is not None
    concepts = args.concepts
    found = [resolve_concept(c, args.family, world_name) for c in concepts or ()] if mini else []
    if found:
        concepts = [c for c, _ in found]
    sd_family = None
    if not mini and concepts and images:
        concepts, sd_family = sd_concepts(args)
    base = quick_config() if args.quick else ExperimentConfig()
    kw = {"family": args.family or (None if mini else sd_family or "object")}
    if concepts:
        kw["concepts"] = tuple(concepts)
    attributes_only = sd_family == "attribute" or bool(found) and all(f == "attribute" for _, f in found)
    skill = args.skill_ratio if args.skill_ratio is not None else (
        PAPER_NUDITY_SKILL_RATIO if attributes_only else PAPER_SKILL_RATIO)
    budget = args.locator_ratio
    data = config_to_dict(base)
    data["study"] = {**data["study"], "skill_ratio": skill, "locator_ratio": budget}
    if world_name == "minisd":  # the paper's settings on the miniature, with its own sampling
        steps, guidance, batch = WORLD_SAMPLING["minisd"]
        if args.skill_ratio is None:
            data["study"]["attribute_skill_ratio"] = PAPER_NUDITY_SKILL_RATIO
        data["study"].update(eval_steps=steps, guidance=guidance, batch_size=batch,
                             preserved=args.preserved or MINISD_PRESERVED, n_eval=4 if args.quick else 32)
    elif args.preserved is not None:
        raise RevivalError("--preserved applies to a miniature Stable Diffusion only (a Stable Diffusion model is "
                           "measured on the paper's classes)")
    seeds = args.seeds or ([0, 1, 2] if args.name == "rq3" and not args.quick else [0])
    kw["seeds"] = tuple(dict.fromkeys(seeds))
    # Stable Diffusion: the family's published sampling, the paper's prompts per concept
    if not mini and images and model_path is not None:
        steps, guidance, batch = FAMILY_SAMPLING.get(folder_family(model_path), FAMILY_SAMPLING["sd1"])
        data["study"].update(eval_steps=steps, guidance=guidance, batch_size=batch,
                             n_eval=(2 if args.quick else {"object": 500}.get(kw["family"], 50)))
    for name in ("n_eval", "eval_steps", "guidance"):
        value = getattr(args, name)
        if value is not None:
            data["study"][name] = value
    return config_from_dict(ExperimentConfig, {**data, **kw})


def _findings_text(result: dict) -> str:
    lines = [result["title"], f"Question: {result['question']}", ""]
    for f in result["findings"]:
        tag = f["verdict"] or ("sanity check" if f.get("kind") == "sanity check" else "note")
        lines.append(f"- [{tag}] {f['title']}: {f['text']}")
    lines += ["", "Thresholds: " + ", ".join(f"{k}={v:g}" for k, v in result["thresholds"].items())]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    if args.name not in catalog.EXPERIMENT_QUESTIONS:
        raise RevivalError(f"unknown experiment {validate.shorten(args.name)!r}; "
                           f"known: {', '.join(catalog.EXPERIMENT_QUESTIONS)}")
    if args.resume:
        given_settings = (args.out, args.quick, args.concepts, args.skill_ratio, args.locator_ratio, args.n_eval,
                          args.eval_steps, args.guidance, args.seeds)
        if any(v not in (None, False) for v in given_settings):
            raise RevivalError("--resume DIR continues a run with its own settings: give no --out, --quick, "
                               "--concepts, --skill-ratio, --locator-ratio, --seeds, --n-eval, --eval-steps or "
                               "--guidance with it")
    from tqdm import tqdm

    from revival.checkpoints import atomic_write_text, find_unet_folder
    from revival.experiments import EXPERIMENTS, ExperimentConfig, config_to_dict, run_experiment
    from revival.experiments.config import read_run_file, write_run_file
    from revival.models import load_pipeline
    from revival.report.html import render_report
    from revival.results import base_result, describe_input, write_result
    from revival.study import Study
    from revival.worlds import world

    exp = EXPERIMENTS.get(args.name)
    device = validate.resolve_device(args.device)
    model_path = resolve_model_path(args.model)
    world_name = bundled_world(model_path)
    mini = world_name is not None
    if args.n_eval is not None:
        from revival.worlds import WORLDS

        side = WORLDS.meta(world_name)["size"] if world_name else None
        size = (side, side) if side else image_size(model_path)
        check_images(args.n_eval * MOST_CONCEPTS, 64, size, n_value=args.n_eval, n_option="--n-eval")
    if exp.needs_images and not mini and not args.concepts and not args.resume:
        raise RevivalError(f"{exp.name} on {model_path} needs --concepts (Imagenette classes, e.g. church, with "
                           "--classifier; artists with --family style and --clip; or nudity, with NudeNet and "
                           "--classifier)")
    if exp.needs_images and (args.unet or args.masks):
        raise RevivalError(f"{exp.name} prunes the model itself: --unet/--masks apply to rq3 only")
    given = _given(args)
    evaluators = None
    if exp.needs_images and not mini and not args.resume:  # checked before anything is written
        evaluators = _sd_evaluators(args, sd_concepts(args)[1], device)
    if not mini and given is None and not args.concepts:
        raise RevivalError(f"{exp.name} on {model_path} needs --unet UNLEARNED --masks MASKS (from `revival prune`), "
                           "or --concepts WORD [--family F] to prune first")
    unet_file = find_unet_folder(model_path)
    model = describe_input(unet_file or model_path)
    if args.resume:
        out = Path(args.resume)
        config = read_run_file(out / RUN_FILE, f"experiment {exp.name}", model, ExperimentConfig)
        claim_run_folder(out, resume=True)
    else:
        config = _config(args, world_name, model_path, exp.needs_images)
        default_out = Path("runs") / time.strftime(f"{exp.name}-%Y%m%d-%H%M%S")
        out = claim_run_folder(Path(args.out) if args.out else default_out, overwrite=args.overwrite,
                               inputs=[model_path, args.unet, args.masks], markers=[RUN_FILE])
        write_run_file(out / RUN_FILE, f"experiment {exp.name}", config, model)
    study = None
    if given is None:
        if evaluators is None and exp.needs_images and not mini:
            evaluators = _sd_evaluators(args, config.family, device)
        study = Study(load_pipeline(model_path, device=device, dtype=args.dtype, allow_pickle=args.allow_pickle),
                      out / "stages", config.study, evaluators=evaluators)
    try:
        with tqdm(desc=exp.name, unit="step", dynamic_ncols=True) as bar:
            result = run_experiment(exp.name, study, config, given, progress=tqdm_progress(bar))
    except KeyboardInterrupt:
        print(f"revival experiment: interrupted; finished stages are kept: continue with "
              f"`revival experiment {exp.name} --model {args.model} --resume {out}`", file=sys.stderr)
        return 130
    inputs = {"model": model_path, "unet": args.unet, "masks": args.masks,
              "evaluator": world(world_name).evaluator_path if exp.needs_images and mini else None}
    result = {**base_result(command_line(), config_to_dict(config), inputs), **result, "resumed": bool(args.resume)}
    plot = exp.plot(result["figures"], out / f"{exp.name}.png")
    atomic_write_text(_findings_text(result), out / "findings.txt")
    result["timings_s"]["total"] = round(time.perf_counter() - t0, 3)
    result["outputs"] = {"plot": plot.name, "findings": "findings.txt", "report": "report.html"}
    report = {**result, "story": result["question"], **{k: result["figures"][k] for k in
                                                        ("accuracy_by_stage", "preserved_by_stage")
                                                        if k in result["figures"]}}
    render_report(report, {}, {f"{exp.title} (see findings.txt for the numbers)": plot}, out / "report.html")
    write_result(result, out / "result.json")
    print(_findings_text(result), end="")
    print(f"wrote {out / 'result.json'}, {plot}, {out / 'findings.txt'}, {out / 'report.html'}")
    return 0
