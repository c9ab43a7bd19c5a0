"""Option validation (revival.validate), the memory bound (revival.budget) and the catalog the parsers read."""

import argparse
import sys

import pytest

from revival import budget, catalog, validate
from revival.errors import RevivalError


@pytest.mark.parametrize("kind, text", [(validate.positive_int, "0"), (validate.positive_int, "1.5"),
                                        (validate.ratio, "1"), (validate.ratio, "nan"), (validate.number(0), "-inf"),
                                        (validate.seed, "-1"), (validate.device_name, "gpu"),
                                        (validate.text(5), "toolong"), (validate.text(5), "  ")])
def test_bad_option_values(kind, text):
    with pytest.raises(argparse.ArgumentTypeError):
        kind(text)


def test_good_option_values():
    assert validate.positive_int("3") == 3 and validate.ratio("0.5") == 0.5 and validate.seed("0") == 0
    assert validate.device_name("cuda:1") == "cuda:1" and validate.number(0, 1, lo_open=True)("1") == 1


def _locator(weights, ratio: float = 0.02, seed: int = 0, fill: str = "gaussian", rank: int | None = None):
    return weights


def test_check_kwargs_names_and_types():
    validate.check_kwargs(_locator, {"ratio": 1, "seed": 3, "fill": "x", "rank": None}, "locator")
    for params, message in [({"foo": 1}, "takes no parameter foo; its parameters: ratio, seed, fill, rank"),
                            ({"ratio": "abc"}, "ratio must be a number"), ({"ratio": float("nan")}, "ratio must"),
                            ({"seed": 1.5}, "seed must be an integer"), ({"fill": 2}, "fill must be text"),
                            ({"ratio": True}, "ratio must be a number"), ({"rank": "x"}, "an integer or null")]:
        with pytest.raises(RevivalError, match=message):
            validate.check_kwargs(_locator, params, "locator")


def test_memory_bound_names_the_option(monkeypatch):
    monkeypatch.setattr(budget, "available_bytes", lambda: 10**10)
    with pytest.raises(RevivalError, match="-n 1000000000: 1000000000 images of 32x32 need about"):
        budget.check_images(10**9, 64, (32, 32), ((10**9, 4),))
    with pytest.raises(RevivalError, match="--batch-size"):
        budget.check_images(1000, 1000, (1000, 1000))
    budget.check_images(64, 64, (512, 512), ((64, 1),))


def test_catalog_matches_the_registries():
    from revival.attack import COMPLETERS, DEFAULT_METHOD, LOCATORS, MAGNITUDES
    from revival.attack.magnitudes import MAGNITUDES as RULES
    from revival.defend import DEFENSES
    from revival.evaluate.mini_eval import families
    from revival.experiments import EXPERIMENTS
    from revival.minisd.unet import VARIANTS
    from revival.worlds import WORLDS

    assert tuple(COMPLETERS.names()) == catalog.COMPLETION_METHODS and DEFAULT_METHOD == catalog.DEFAULT_METHOD
    assert tuple(MAGNITUDES.names()) == catalog.MAGNITUDE_RULES and catalog.NEEDS_REFERENCE == set(
        RULES.names_where(needs_reference=True))
    assert tuple(LOCATORS.names()) == catalog.LOCATOR_NAMES and tuple(DEFENSES.names()) == catalog.DEFENSE_NAMES
    assert all(tuple(families(w).names()) == catalog.FAMILY_NAMES for w in WORLDS.names())
    assert {n: EXPERIMENTS.get(n).question for n in EXPERIMENTS.names()} == catalog.EXPERIMENT_QUESTIONS
    assert tuple(VARIANTS) == catalog.MINISD_VARIANTS


def test_parsing_imports_nothing_heavy():
    import os
    import subprocess
    from pathlib import Path

    import revival

    code = ("import sys; from revival.cli import main\n"
            "for argv in (['--help'], ['revive', '--help'], ['prune', '--steps', '0']):\n"
            "    try: main(argv)\n"
            "    except SystemExit: pass\n"
            "heavy = ('torch', 'diffusers', 'transformers', 'numpy')\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))")
    env = {**os.environ, "PYTHONPATH": str(Path(revival.__file__).resolve().parents[1])}
    got = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert got.stdout.strip().splitlines()[-1] == "[]", got.stdout + got.stderr
