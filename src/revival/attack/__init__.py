"""The data-free, training-free revival attack (SPEC section 2): locate, complete, signs, magnitudes.

Never imports unlearn/, evaluate/ or mini/ and never reads a mask file: only the weights.
"""

from revival.attack import adaptive_locate, structured  # noqa: F401  (register adaptive locators, `structured`)
from revival.attack.complete import COMPLETERS
from revival.attack.locate import LOCATORS, locate
from revival.attack.magnitudes import MAGNITUDES
from revival.attack.pipeline import DEFAULT_METHOD, ReviveResult, revive
from revival.attack.signs import retain_top

__all__ = ["COMPLETERS", "DEFAULT_METHOD", "LOCATORS", "MAGNITUDES", "ReviveResult", "locate", "retain_top", "revive"]
