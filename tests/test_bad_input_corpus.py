"""The bad-input corpus (issue 12): every case fails with its exit code and one line naming the file or option,
no traceback, the inputs unchanged (sha256) and nothing partial left behind (see corpus_cases.judge)."""

import pytest
import torch
from corpus_cases import CASES, build_base, judge, run_case


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    torch.set_num_threads(1)
    return build_base(tmp_path_factory.mktemp("corpus") / "base")


def test_corpus_is_large_and_named():
    names = [c.name for c in CASES]
    assert len(names) >= 40 and len(set(names)) == len(names)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_input(case, base, tmp_path):
    if case.needs_no_cuda and torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    got = run_case(case, base, tmp_path / "ws")
    problems = judge(case, got)
    assert not problems, f"{problems}\n{got.err}"
    assert got.lines[0].startswith("revival") and ": error: " in got.lines[0]
