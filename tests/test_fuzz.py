"""The seeded fuzzer in CI: mutated CSV bytes, model files and option values must each end
with exit status 0, 1 or 2, one Error: line on failure, no traceback and no output left
behind (tests/fuzzing.py; ``tools/fuzz.py --cases N`` runs more, nightly)."""

from __future__ import annotations

import pytest
from fuzzing import fuzz

CASES = 200  # seeded: the same cases on every run, about 20-40 s on a shared machine


@pytest.mark.parametrize("seed", [20])
def test_fuzzed_inputs_keep_the_error_contract(tmp_path, seed) -> None:
    failures = fuzz(CASES, seed, tmp_path)
    report = "\n".join(f"case {i}: emcli {case.describe()}\n  {why}" for i, case, why in failures)
    assert not failures, report
