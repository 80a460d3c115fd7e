"""A seeded fuzzer of emcli's inputs: CSV bytes, model files and option values.

Each case is a command line (with the files it reads) made by mutating a good one.  Every
case must end with exit status 0, 1 or 2; on failure exactly one ``Error:`` line on stderr
and no output file left behind (nor a temporary file); never a traceback.  The same seed
gives the same cases.  ``tests/test_fuzz.py`` runs a few hundred in CI; ``tools/fuzz.py
--cases N --seed S`` runs more.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from clirun import run

BOMS = [b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b""]
ODD_TOKENS = [
    b"nan",
    b"NaN",
    b"inf",
    b"-inf",
    b"1e400",
    b"-1e400",
    b"1e-310",
    b"",
    b'"',
    b'""',
    b"\x00",
    b"abc",
    b"1,5",
    b"0x1F",
    b"\xe9",
    b"\xff\xfe",
    b"1e100",
    b"-0",
    b" 1 ",
]
ODD_JSON = [
    None,
    "x",
    "",
    0,
    -1,
    1,
    2,
    1.5,
    10**30,
    -(10**30),
    1e308,
    True,
    False,
    [],
    [1, 2],
    [[1]],
    {},
    {"table": "x"},
    "NaN",
    [None],
    ["a", "b"],
    [[1, 2], [3]],
    "abc",
    [1e308],
]
K_SPECS = [
    "1",
    "2",
    "3",
    "0",
    "-1",
    "1..3",
    "3..1",
    "1..1000000000",
    "99999999999999999999",
    "2,,3",
    "a",
    "",
    "1.5",
    "2,3",
    "1..",
    "..2",
    "é",
    "1..2..3",
]
FLOATS = ["0", "1e-6", "1e300", "-1", "nan", "inf", "-inf", "1e-320", "abc", "", "1e400"]
DELIMS = [",", ";", "\t", "\\t", "|", "é", "", ";;", '"', "\x00", " ", "tab", "\n"]
EXTENSIONS = [".csv", ".tsv", ".parquet", ".jsonl", ".json", ".txt", ""]


@dataclass
class Case:
    args: list[str]
    files: dict[str, bytes] = field(default_factory=dict)
    stdin: bytes | None = None
    outputs: list[str] = field(default_factory=list)  # paths that must not exist on failure

    def describe(self) -> str:
        return " ".join(self.args)


# ---------------------------------------------------------------------------- base inputs
def good_csv(rng: random.Random) -> bytes:
    n = rng.choice([6, 12, 40])
    d = rng.choice([1, 2, 3])
    g = np.random.default_rng(rng.randrange(2**32))
    x = np.concatenate([g.normal(size=(n // 2, d)), g.normal(5, 1, size=(n - n // 2, d))])
    names = [f"c{j}" for j in range(d)]
    lines = [",".join(names)] + [",".join(repr(float(v)) for v in row) for row in x]
    return ("\n".join(lines) + "\n").encode()


def good_model(workdir: Path) -> dict:
    """A real model file (fitted once per fuzz run, then mutated)."""
    path = workdir / "base-model.json"
    if not path.exists():
        data = workdir / "base.csv"
        g = np.random.default_rng(0)
        x = np.concatenate([g.normal(size=(30, 2)), g.normal(4, 1, size=(30, 2))])
        data.write_text("a,b\n" + "\n".join(f"{float(u)!r},{float(v)!r}" for u, v in x) + "\n")
        result = run("fit", data, "-k", "1..2", "-n", "1", "--params", path, "-q")
        assert result.exit_code == 0, result.stderr
    return json.loads(path.read_text())


# ---------------------------------------------------------------------------- mutations
def mutate_csv(data: bytes, rng: random.Random) -> bytes:
    for _ in range(rng.randint(1, 3)):
        choice = rng.randrange(11)
        if choice == 0 and data:  # truncate
            data = data[: rng.randrange(len(data))]
        elif choice == 1:
            data = rng.choice(BOMS) + data
        elif choice == 2 and data:  # insert an odd token
            i = rng.randrange(len(data))
            data = data[:i] + rng.choice(ODD_TOKENS) + data[i:]
        elif choice == 3:
            data = data.replace(b",", rng.choice([b";", b"\t", b"|", b" ", b",,"]))
        elif choice == 4:
            data = data.replace(b"\n", b"\r\n")
        elif choice == 5:  # an odd encoding of the whole file
            try:
                data = data.decode("utf-8", "replace").encode(rng.choice(["utf-16", "latin-1"]))
            except UnicodeEncodeError:
                pass
        elif choice == 6 and data:  # flip bytes
            b = bytearray(data)
            for _ in range(rng.randint(1, 4)):
                b[rng.randrange(len(b))] = rng.randrange(256)
            data = bytes(b)
        elif choice == 7:  # quotes around some fields
            data = data.replace(b",", b'","', rng.randint(1, 3))
        elif choice == 8:  # a duplicate or empty header name
            data = b"c0," + data if rng.random() < 0.5 else b"," + data
        elif choice == 9:
            data = b""
        else:  # a text column
            lines = data.split(b"\n")
            data = b"\n".join(line + (b",t" if i else b",label") for i, line in enumerate(lines))
    return data


def mutate_json(value: object, rng: random.Random) -> object:
    """One mutation somewhere in a JSON value: delete a key, change a type or shape."""
    if isinstance(value, dict) and value:
        key = rng.choice(sorted(value))
        roll = rng.random()
        out = dict(value)
        if roll < 0.25:
            del out[key]
        elif roll < 0.6:
            out[key] = rng.choice(ODD_JSON)
        else:
            out[key] = mutate_json(out[key], rng)
        return out
    if isinstance(value, list) and value:
        out_list = list(value)
        roll = rng.random()
        i = rng.randrange(len(out_list))
        if roll < 0.2:
            del out_list[i]
        elif roll < 0.35:
            out_list.append(out_list[i])
        elif roll < 0.6:
            out_list[i] = rng.choice(ODD_JSON)
        else:
            out_list[i] = mutate_json(out_list[i], rng)
        return out_list
    if isinstance(value, float | int) and not isinstance(value, bool):
        return rng.choice([value * 1e300, -value, 0, float("nan"), float("inf"), 10**400])
    return rng.choice(ODD_JSON)


def model_text(data: object, rng: random.Random) -> bytes:
    text = json.dumps(data, allow_nan=True)
    if rng.random() < 0.1 and text:
        text = text[: rng.randrange(len(text))]
    return text.encode()


# ---------------------------------------------------------------------------- cases
def make_case(rng: random.Random, workdir: Path) -> Case:
    kind = rng.choice(["fit", "fit", "fit-options", "model", "model", "apply"])
    out = f"out{rng.choice(EXTENSIONS)}"
    if kind == "fit":
        files = {"in.csv": mutate_csv(good_csv(rng), rng)}
        args = ["fit", "in.csv", "-k", rng.choice(["1", "2", "1..2"]), "-n", "1"]
        args += ["--labels", out, "--params", "m.json"]
        if rng.random() < 0.3:
            args += ["--engine", "stream"]
        return Case(args, files, outputs=[out, "m.json"])
    if kind == "fit-options":
        files = {"in.csv": good_csv(rng)}
        args = ["fit", "in.csv", "-n", "1", "--max-iter", "20"]
        args += ["-k", rng.choice(K_SPECS)]
        for flag, values in (
            ("--reg-covar", FLOATS),
            ("--tol", FLOATS),
            ("--delimiter", DELIMS),
            ("--covariance", ["full", "diag", "all", "x", "", "full,tied", "VVV"]),
            ("--init-sample", ["0", "1", "-3", "x"]),
            ("--memory-limit", ["1B", "abc", "0", "1GB", "-1MB"]),
            ("--seed", ["-1", "99999999999999999999", "x", "3"]),
            ("--id-column", ["c0", "nope"]),
            ("--format", ["csv", "tsv", "parquet", "x"]),
        ):
            if rng.random() < 0.3:
                args += [flag, rng.choice(values)]
        if rng.random() < 0.3:
            args.append("--with-input")
        args += ["--labels", out]
        return Case(args, files, outputs=[out])
    base = good_model(workdir)
    model = mutate_json(base, rng)
    files = {"m.json": model_text(model, rng), "in.csv": b"a,b\n1,2\n3,4\n-1,0.5\n"}
    command = rng.choice(["describe", "predict", "score", "sample", "plot", "init"])
    if kind == "apply":  # a good model, odd options or data
        files["m.json"] = json.dumps(base).encode()
        files["in.csv"] = mutate_csv(files["in.csv"], rng)
    if command == "describe":
        args = ["describe", "m.json"] + (["--json"] if rng.random() < 0.5 else [])
        outputs: list[str] = []
    elif command == "predict":
        args = ["predict", "m.json", "in.csv", "--labels", out]
        outputs = [out]
    elif command == "score":
        args = ["score", "m.json", "in.csv", "--output", out]
        args += rng.choice([[], ["--lowest", rng.choice(["1", "0", "5"])], ["--below", "nan"]])
        outputs = [out]
    elif command == "sample":
        args = ["sample", "m.json", "-n", rng.choice(["3", "0", "99999999999999999999", "-1"])]
        args += ["--output", out]
        outputs = [out]
    elif command == "plot":
        kind_ = rng.choice(["convergence", "selection", "clusters", "density"])
        args = ["plot", "m.json", "in.csv", "--kind", kind_, "-o", "p.png", "--size", "2x2"]
        args += ["--dpi", "20"]
        outputs = ["p.png"]
    else:  # a warm start from the mutated model
        files["d.csv"] = b"a,b\n" + b"\n".join(f"{i % 7},{i % 3}".encode() for i in range(20))
        args = ["fit", "d.csv", "-k", "2", "--init", "m.json", "-n", "1", "--params", "o.json"]
        outputs = ["o.json"]
    if rng.random() < 0.3:
        args.append(rng.choice(["-q", "-v"]))
    return Case(args, files, outputs=outputs)


def check_case(case: Case, directory: Path) -> str | None:
    """Run ``case`` in ``directory``; None if it behaved, else what went wrong."""
    import os

    directory.mkdir(parents=True, exist_ok=True)
    for name, data in case.files.items():
        (directory / name).write_bytes(data)
    before = set(os.listdir(directory))
    cwd = os.getcwd()
    os.chdir(directory)
    try:
        result = run(*case.args, stdin=case.stdin)
    except BaseException as exc:  # a traceback: the bug the fuzzer is for
        return f"raised {type(exc).__name__}: {exc}"
    finally:
        os.chdir(cwd)
    if result.exit_code not in (0, 1, 2):
        return f"exit status {result.exit_code}: {result.stderr[-500:]}"
    if "Traceback" in result.stderr:
        return f"traceback: {result.stderr[-800:]}"
    after = set(os.listdir(directory))
    if any(name.endswith(".tmp") for name in after - before):
        return f"temporary file left behind: {sorted(after - before)}"
    if result.exit_code != 0:
        errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
        if len(errors) != 1:
            return f"{len(errors)} Error: lines: {result.stderr[-500:]}"
        left = [p for p in case.outputs if p in after - before]
        if left:
            return f"output left behind after a failure: {left}"
    return None


def fuzz(n_cases: int, seed: int, workdir: Path) -> list[tuple[int, Case, str]]:
    """Run ``n_cases`` seeded cases; the failures as (index, case, problem)."""
    import shutil

    rng = random.Random(seed)
    failures = []
    workdir.mkdir(parents=True, exist_ok=True)
    for i in range(n_cases):
        case = make_case(rng, workdir)
        directory = workdir / f"case{i}"
        problem = check_case(case, directory)
        if problem is None:
            shutil.rmtree(directory, ignore_errors=True)
        else:
            failures.append((i, case, problem))
    return failures
