"""Record the golden outputs of tests/golden_cases.py (run: ``python tests/record_golden.py``).

RUN THIS ONLY ON THE REFERENCE CODE.  The golden files are the outputs of emcli 0.1.0 as of
commit a41688c ("benchmarks/run.py: the bound case's dense timing runs on the data already
made for the case", the last commit before the library refactor), and tests/test_golden.py
checks later code against them.  Re-recording on changed code would make the test compare
that code with itself.  As a guard, the script refuses to run when the code writes a model
file whose ``schema_version`` is not 1.

The script records the checkout it lives in: it puts that checkout first on PYTHONPATH for
the ``python -m emcli`` subprocesses, whatever emcli is installed.

It writes:

- tests/data/golden/inputs/iris_gaps.csv: sample_data/iris.csv with cells blanked by a
  seeded generator (Python's ``random``, whose stream is stable across versions);
- tests/data/model-0.1.0*.json: model files of the reference code (schema_version 1);
- tests/data/golden/CASE/: for each case, ``stdout.txt`` and every output file it writes;
- tests/data/golden/manifest.json: each case's exit code and files, and the commit.

``--out DIR`` writes the case outputs and the manifest to DIR instead (inputs and model
files are still written to tests/data/), e.g. to check that two recordings are
byte-identical: ``python tests/record_golden.py --out /tmp/again && diff -r /tmp/again
tests/data/golden``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from golden_cases import (
    DATA,
    GOLDEN,
    INPUTS,
    MODEL_FILES,
    ROOT,
    SAMPLE,
    STDOUT_NAME,
    Case,
    child_env,
    expand,
    model_file_argv,
    ordered,
    run_case,
)

REFERENCE_COMMIT = "a41688c"
GAPS_SEED = 20240601


def make_gappy_iris(path: Path) -> None:
    """iris.csv with about 10% of the numeric cells blanked (empty or ``NA``), and data row
    10 blank in every numeric column (a row with nothing observed)."""
    rng = random.Random(GAPS_SEED)
    lines = (SAMPLE / "iris.csv").read_text().splitlines()
    out = [lines[0]]
    for i, line in enumerate(lines[1:]):
        cells = line.split(",")
        for j in range(4):
            if i == 10 or rng.random() < 0.1:
                cells[j] = "NA" if rng.random() < 0.3 else ""
        out.append(",".join(cells))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out) + "\n")


def git_head() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "emcli"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" (emcli/ modified)" if dirty else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=GOLDEN, help="where to write the cases")
    args = parser.parse_args()

    env = child_env()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    where = subprocess.run(
        [sys.executable, "-c", "import emcli; print(emcli.__file__, emcli.__version__)"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    print(f"recording with {where}, checkout {git_head()}", file=sys.stderr)

    make_gappy_iris(INPUTS / "iris_gaps.csv")
    with tempfile.TemporaryDirectory() as tmp:
        for name in MODEL_FILES:
            argv = (*model_file_argv(name), "--params", "model.json")
            result = run_case(Case(name, argv), Path(tmp), env)
            if result.exit_code != 0:
                sys.exit(f"writing {name} failed:\n{result.stderr.decode()}")
            written = Path(tmp) / name / "model.json"
            version = json.loads(written.read_text()).get("schema_version")
            if version != 1:
                sys.exit(
                    f"the code under {where} writes schema_version {version}, not 1: it is "
                    f"not the reference code (commit {REFERENCE_COMMIT}); nothing recorded"
                )
            shutil.copyfile(written, DATA / name)

    out: Path = args.out
    if out.exists():
        for child in out.iterdir():
            if child.is_dir() and child.name != "inputs":
                shutil.rmtree(child)
    manifest: dict[str, object] = {
        "reference_commit": git_head(),
        "emcli": where.split()[-1],
        "cases": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for case in ordered():
            result = run_case(case, work, env)
            if result.exit_code != 0:
                print(f"{case.name}: exit {result.exit_code}", file=sys.stderr)
                print(result.stderr.decode(), file=sys.stderr)
            dest = out / case.name
            dest.mkdir(parents=True, exist_ok=True)
            (dest / STDOUT_NAME).write_bytes(result.stdout)
            for rel in case.files:
                assert rel != STDOUT_NAME
                src = work / case.name / rel
                if not src.exists():
                    sys.exit(f"{case.name}: did not write {rel}")
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dest / rel)
            manifest["cases"][case.name] = {  # type: ignore[index]
                "argv": list(case.argv),
                "stdin": case.stdin,
                "exit_code": result.exit_code,
                "files": list(case.files),
                "stdout": case.stdout,
            }
            print(f"{case.name}: exit {result.exit_code}", file=sys.stderr)
            for text in (result.stdout, *((work / case.name / r).read_bytes() for r in case.files)):
                if str(ROOT).encode() in text or expand("{sample}").encode() in text:
                    print(f"  warning: {case.name} output holds a path", file=sys.stderr)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
