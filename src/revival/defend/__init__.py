"""Defenses that hide pruned positions before publishing: `obfuscate(state_dict, masks, method=...)`."""

from revival.defend.masks import load_masks, match_masks
from revival.defend.obfuscate import DEFENSES, obfuscate

__all__ = ["DEFENSES", "load_masks", "match_masks", "obfuscate"]
