"""The names the command line offers (variants, layer presets, families, experiments), free of torch.

`revival --help` and every argument error must answer at once, so the parsers read their choices
here instead of importing the registries (which import torch). The constants below that are not
registries are the single source their modules import; the registry name lists are copies that
tests/test_catalog.py checks against the registries, so a new variant fails a test until it is
listed here.
"""

from __future__ import annotations

# Named layer sets (ConceptPrune's hook modules); anything else is a glob over parameter names.
LAYER_PRESETS = {
    "ffn2": "*ff.net.2.weight",
    "ffn1": "*ff.net.0.proj.weight",
    "attn_k": "*attn2.to_k.weight",
    "attn_v": "*attn2.to_v.weight",
}
# Prompt families of ConceptPrune and of the mini-world evaluation (the same three).
FAMILY_NAMES = ("object", "style", "attribute")
# The control concept of the mini attribute family: 'a photo of a {object}' without the cage.
CONTROL = "photo"
# Populations of surviving weights a defense's fill statistics come from.
SCOPES = ("row", "layer", "global")

DEFAULT_METHOD = "softimpute"  # holdout lambda + MNAR fill, chosen on real trained weights: benchmarks/attack_real.py
COMPLETION_METHODS = ("paper", "softimpute", "als", "structured")
MAGNITUDE_RULES = ("nms", "row_mean", "sampled", "completed", "oracle_sign", "oracle_magnitude", "random_sign")
NEEDS_REFERENCE = frozenset({"oracle_sign", "oracle_magnitude"})  # ablations that read the original weights
LOCATOR_NAMES = ("zeros", "global_bottom", "row_outlier", "residual", "neuron")
DEFENSE_NAMES = ("gaussian", "decoy", "neuron", "lowrank")
EXPERIMENT_QUESTIONS = {
    "rq1": "Does the data-free attack bring back a concept ConceptPrune erased, from the pruned weights alone?",
    "rq2": "Do the recovered signs or the magnitudes carry the concept? (magnitude rules and oracle ablations)",
    "rq3": "Can an adaptive attacker still locate the pruned positions after each defense? (weight space only)",
    "rq4": "Which noise scale keeps the concept erased, the rest intact, and stops the adaptive attacker's revival?",
}
# The miniature Stable Diffusion's components, in the order `revival train-mini` trains them,
# and its UNet variants (a copy of revival.minisd.unet.VARIANTS' names).
MINISD_COMPONENTS = ("evaluator", "vae", "text", "unet")
MINISD_VARIANTS = ("base", "wide", "deep", "narrow", "t2", "xattn16", "snr16")
