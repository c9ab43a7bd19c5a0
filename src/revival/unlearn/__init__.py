"""ConceptPrune unlearning: hooks -> activation norms -> WANDA masks -> zeroed UNet weights."""

from revival.unlearn.conceptprune import PruneResult, apply_masks, concept_prune, hook_layers, masks_from_norms
from revival.unlearn.prompts import PromptPairs, family_prompts, read_prompt_pairs
from revival.unlearn.wanda import normalised_sq_colsum, union_over_steps, wanda_mask
from revival.worlds import world_of

__all__ = [
    "PromptPairs",
    "PruneResult",
    "apply_masks",
    "concept_prune",
    "family_prompts",
    "hook_layers",
    "masks_from_norms",
    "normalised_sq_colsum",
    "read_prompt_pairs",
    "union_over_steps",
    "wanda_mask",
    "world_of",
]
