"""Nightly-style fuzzing of emcli: many seeded cases of mutated CSV bytes, model files and
option values (the generator of tests/fuzzing.py, which CI runs a few hundred cases of).

    python tools/fuzz.py --cases 5000 --seed 7

Exit status 1 when a case breaks the contract (a traceback, an exit status other than 0, 1
or 2, not exactly one Error: line on failure, an output left behind); each failing case is
printed with its command line and kept under --workdir for replay.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fuzzing import fuzz


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=2000, help="number of cases [2000]")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generator [0]")
    parser.add_argument("--workdir", type=Path, help="where cases run [a temporary directory]")
    args = parser.parse_args()
    warnings.simplefilter("error")  # a stray numpy warning is a finding, as in the tests
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="emcli-fuzz-"))
    failures = fuzz(args.cases, args.seed, workdir)
    for i, case, problem in failures:
        print(f"case {i}: emcli {case.describe()}\n  {problem}\n  files in {workdir}/case{i}")
    print(f"{args.cases} cases, {len(failures)} failure(s), seed {args.seed}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
