"""Bad input (issue 8): a table of cases across every command, each run through the real
entry point (``emcli.cli.main``) in-process (``clirun.run``).

Every case must end with the exit status of the table (``emcli.errors.ExitStatus``: 1 bad
data / file, 2 bad command line), exactly one line on stderr that starts with ``Error: ``
and says what to do (``hint``), no traceback, nothing on stdout, and no file created,
removed or changed anywhere in the working directory (some cases pre-create an output file
with known content and it must stay as it was).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from clirun import run

from emcli.errors import ExitStatus

DATA, USAGE = int(ExitStatus.ERROR), int(ExitStatus.USAGE)


def either(cli: str, python: str) -> re.Pattern[str]:
    """A hint naming a parameter: the library writes its Python name (``python``), the CLI
    will show its flag (``cli``) once its table of flag names renders the messages."""
    return re.compile(f"({re.escape(cli)}|{re.escape(python)})")


COLUMNS = either("-c/--columns", "columns")
DELIMITER = either("--delimiter", "delimiter")
FORMAT = either("--format", "fmt")
KNOWN = b"known content, must survive a failed run\n"


# ---------------------------------------------------------------------------- the files
def _clusters(n: int = 60) -> np.ndarray:
    rng = np.random.default_rng(3)
    centres = np.array([[0.0, 0.0], [8.0, 0.0], [0.0, 8.0]])
    return centres[np.arange(n) % 3] + rng.normal(size=(n, 2))


def _csv(x: np.ndarray, header: str = "a,b") -> str:
    return header + "\n" + "".join(",".join(repr(float(v)) for v in row) + "\n" for row in x)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    """One directory with every input the cases name, and a model fitted on good.csv."""
    d = tmp_path_factory.mktemp("bad")
    x = _clusters()
    good = _csv(x)
    (d / "good.csv").write_text(good)
    (d / "small.csv").write_text(_csv(x[:4]))
    (d / "empty.csv").write_text("")
    (d / "header.csv").write_text("a,b\n")
    (d / "garbage.csv").write_bytes(bytes(range(256)) * 8)
    (d / "csv.parquet").write_text(good)
    (d / "data.xyz").write_text(good)
    (d / "ragged.csv").write_text("a,b\n1,2\n3,4,5\n6,7\n")
    (d / "dup.csv").write_text("a,a\n1,2\n3,4\n5,6\n")
    (d / "mixed.csv").write_text(
        "a,b,name\n" + "".join(f"{float(r[0])!r},{float(r[1])!r},row{i}\n" for i, r in enumerate(x))
    )
    (d / "text.csv").write_text("name,city\nann,oslo\nbob,rome\ncid,lima\n")
    (d / "inf.csv").write_text("a,b\n1,2\n3,inf\n5,6\n")
    (d / "nan.csv").write_text("a,b\n1,2\n3,\n5,6\n")
    (d / "nullcol.csv").write_text("a,b,c\n1,2,\n3,4,\n5,6,\n")
    (d / "onlya.csv").write_text("a,c\n1,2\n3,4\n")
    (d / "textb.csv").write_text("a,b\n1,x\n2,y\n")
    (d / "adir").mkdir()
    (d / "afile").write_text("a plain file\n")
    (d / "labels.csv").write_bytes(KNOWN)
    (d / "notmodel.json").write_text(json.dumps({"hello": "world"}))
    (d / "notjson.json").write_bytes(bytes(range(256)))
    (d / "list.json").write_text("[1, 2, 3]")
    (d / "image.png").write_bytes(KNOWN)
    (d / "weighted.csv").write_text(_csv(np.column_stack([x, np.arange(len(x)) % 3]), "a,b,w"))
    (d / "textweights.csv").write_text(
        "a,b,w\n"
        + "".join(
            f"{float(r[0])!r},{float(r[1])!r},{'many' if i == 4 else 1}\n" for i, r in enumerate(x)
        )
    )
    code = run(
        "fit", str(d / "good.csv"), "-k", "3", "-n", "2", "-q", "--params", str(d / "model.json")
    ).exit_code
    assert code == 0
    model = json.loads((d / "model.json").read_text())
    (d / "future.json").write_text(json.dumps({**model, "schema_version": 99}))
    text = (d / "model.json").read_text()
    (d / "truncated.json").write_text(text[: len(text) // 2])
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"a": x[:, 0], "b": x[:, 1]}), d / "whole.parquet")
    whole = (d / "whole.parquet").read_bytes()
    (d / "truncated.parquet").write_bytes(whole[: len(whole) // 2])
    (d / "whole.parquet").unlink()
    broken = {**model, "weights": [0.5, 0.5, 0.5]}
    (d / "badweights.json").write_text(json.dumps(broken))
    nan_model = json.dumps(model).replace(str(model["weights"][0]), "NaN", 1)
    (d / "nanmodel.json").write_text(nan_model)
    return d


# ---------------------------------------------------------------------------- the cases
@dataclass
class Case:
    id: str
    args: list[str]  # {d} is the directory of ``files``
    code: int
    hint: tuple[str | re.Pattern[str], ...]  # fragments of the message (what is wrong, what
    # to do); a pattern for a parameter the message names (``either``)
    stdin: bytes | str | None = None  # "@NAME": the bytes of file NAME in the directory
    root_ok: bool = True  # False: the case relies on permissions root ignores
    setup: list[str] = field(default_factory=list)
    needs: str | None = None  # a library feature the case relies on (LIBRARY)


def _weights_column() -> bool:
    """The reader and engines take a weights column (``open_engine(..., weights=COL)``)."""
    from emcli.engines.choose import choose_engine, open_engine

    return all("weights" in inspect.signature(f).parameters for f in (open_engine, choose_engine))


LIBRARY = {"weights column": _weights_column}


FIT = ["fit", "{d}/good.csv"]
CASES = [
    # -- fit: the input file
    Case(
        "fit-missing-file",
        ["fit", "{d}/nope.csv", "-k", "2", "--labels", "{d}/new.csv"],
        DATA,
        ("does not exist",),
    ),
    Case("fit-directory-input", ["fit", "{d}/adir", "-k", "2"], DATA, ("is a directory",)),
    Case("fit-empty-file", ["fit", "{d}/empty.csv", "-k", "2"], DATA, ("empty", "header row")),
    Case("fit-empty-stdin", ["fit", "-", "-k", "2"], DATA, ("standard input", "empty"), stdin=b""),
    Case(
        "fit-garbage-stdin",
        ["fit", "-", "-k", "2"],
        DATA,
        ("standard input",),
        stdin=bytes(range(256)) * 4,
    ),
    Case(
        "fit-truncated-parquet",
        ["fit", "{d}/truncated.parquet", "-k", "2"],
        DATA,
        ("not a valid Parquet file",),
    ),
    Case("fit-header-only", ["fit", "{d}/header.csv", "-k", "2"], DATA, ("no data rows",)),
    Case("fit-binary-garbage", ["fit", "{d}/garbage.csv", "-k", "2"], DATA, ("garbage.csv",)),
    Case(
        "fit-csv-named-parquet",
        ["fit", "{d}/csv.parquet", "-k", "2"],
        DATA,
        ("not a valid Parquet file", "--format csv"),
    ),
    Case("fit-unknown-extension", ["fit", "{d}/data.xyz", "-k", "2"], DATA, ("--format",)),
    Case("fit-unknown-format-option", [*FIT, "-k", "2", "--format", "xls"], USAGE, ("--format",)),
    Case(
        "fit-ragged-rows",
        ["fit", "{d}/ragged.csv", "-k", "2"],
        DATA,
        ("cannot parse", "Expected 2 columns", "--delimiter"),
    ),
    Case(
        "fit-duplicate-columns",
        ["fit", "{d}/dup.csv", "-k", "2"],
        DATA,
        ("duplicate column", "rename"),
    ),
    Case(
        "fit-unknown-column",
        [*FIT, "-k", "2", "-c", "a,zz"],
        DATA,
        ("unknown column", "'zz'", "the input has: 'a', 'b'", "-c/--columns"),
    ),
    Case(
        "fit-text-column-named",
        ["fit", "{d}/mixed.csv", "-k", "2", "-c", "a,name"],
        DATA,
        ("'name' is not numeric", "-c/--columns"),
    ),
    Case(
        "fit-only-text-columns",
        ["fit", "{d}/text.csv", "-k", "2"],
        DATA,
        ("no numeric column", "--delimiter"),
    ),
    Case(
        "fit-wrong-delimiter",
        [*FIT, "-k", "2", "--delimiter", ";"],
        DATA,
        ("no numeric column", "--delimiter"),
    ),
    Case(
        "fit-long-delimiter",
        [*FIT, "-k", "2", "--delimiter", ";;"],
        USAGE,
        ("--delimiter", "one character"),
    ),
    Case(
        "fit-inf-value", ["fit", "{d}/inf.csv", "-k", "2"], DATA, ("infinite value", "data row 2")
    ),
    Case(
        "fit-missing-value-refused",
        ["fit", "{d}/nan.csv", "-k", "2", "--missing", "error"],
        DATA,
        ("missing value", "--missing em"),
    ),
    Case(
        "fit-unknown-missing-policy",
        ["fit", "{d}/nan.csv", "-k", "2", "--missing", "mean"],
        USAGE,
        ("--missing",),
    ),
    Case(
        "fit-column-without-values",
        ["fit", "{d}/nullcol.csv", "-k", "2"],
        DATA,
        ("'c' has no values", "-c/--columns"),
    ),
    # -- fit: the options
    Case("fit-k-zero", [*FIT, "-k", "0"], USAGE, ("-k",)),
    Case("fit-k-negative", [*FIT, "-k", "-2"], USAGE, ("-k",)),
    Case("fit-k-text", [*FIT, "-k", "three"], USAGE, ("-k",)),
    Case(
        "fit-k-more-than-rows",
        ["fit", "{d}/small.csv", "-k", "5"],
        DATA,
        ("more components than", "at most -k 4"),
    ),
    Case("fit-k-range-reversed", [*FIT, "-k", "5..2"], USAGE, ("-k",)),
    Case("fit-k-range-garbage", [*FIT, "-k", "1..x"], USAGE, ("-k",)),
    Case(
        "fit-k-range-beyond-rows",
        ["fit", "{d}/small.csv", "-k", "5..6"],
        DATA,
        ("more components than", "at most -k 4"),
    ),
    # -k may be left out (mclust's default grid); E and V are for one column only
    Case(
        "fit-univariate-model-on-many-columns",
        [*FIT, "-k", "1..2", "--covariance", "E,V"],
        USAGE,
        ("one column",),
    ),
    Case(
        "fit-unknown-covariance",
        [*FIT, "-k", "2", "--covariance", "round"],
        USAGE,
        ("--covariance", "full"),
    ),
    Case("fit-zero-restarts", [*FIT, "-k", "2", "-n", "0"], USAGE, ("--restarts",)),
    Case("fit-negative-tol", [*FIT, "-k", "2", "--tol", "-1e-3"], USAGE, ("--tol",)),
    Case("fit-nan-tol", [*FIT, "-k", "2", "--tol", "nan"], USAGE, ("--tol",)),
    Case("fit-negative-reg-covar", [*FIT, "-k", "2", "--reg-covar", "-1"], USAGE, ("--reg-covar",)),
    Case("fit-inf-reg-covar", [*FIT, "-k", "2", "--reg-covar", "inf"], USAGE, ("--reg-covar",)),
    Case("fit-unknown-option", [*FIT, "-k", "2", "--colour"], USAGE, ("--colour",)),
    Case(
        "fit-selection-without-range",
        [*FIT, "-k", "2", "--selection", "{d}/sel.csv"],
        USAGE,
        ("--selection", "range"),
    ),
    # -- fit: the outputs
    Case(
        "fit-output-dir-is-file",
        [*FIT, "-k", "2", "-o", "{d}/afile"],
        DATA,
        ("not a directory", "give a new or an existing directory"),
    ),
    Case(
        "fit-output-dir-parent-missing",
        [*FIT, "-k", "2", "-o", "{d}/nodir/out"],
        DATA,
        ("does not exist",),
    ),
    Case(
        "fit-labels-parent-missing",
        [*FIT, "-k", "2", "--labels", "{d}/nodir/l.csv"],
        DATA,
        ("does not exist",),
    ),
    Case(
        "fit-params-parent-is-file",
        [*FIT, "-k", "2", "--params", "{d}/afile/m.json"],
        DATA,
        ("is a file, not a directory",),
    ),
    Case(
        "fit-labels-is-directory",
        [*FIT, "-k", "2", "--labels", "{d}/adir"],
        DATA,
        ("is a directory", "file name"),
    ),
    Case(
        "fit-same-output-twice",
        [*FIT, "-k", "2", "--labels", "{d}/x.csv", "--responsibilities", "{d}/x.csv"],
        DATA,
        ("two outputs", "its own path"),
    ),
    Case(
        "fit-two-outputs-on-stdout",
        [*FIT, "-k", "2", "--labels", "-", "--responsibilities", "-"],
        DATA,
        ("standard output",),
    ),
    Case(
        "fit-existing-labels-kept-on-bad-data",
        ["fit", "{d}/inf.csv", "-k", "2", "--labels", "{d}/labels.csv"],
        DATA,
        ("infinite value",),
    ),
    Case(
        "fit-existing-labels-kept-on-bad-option",
        [*FIT, "-k", "0", "--labels", "{d}/labels.csv"],
        USAGE,
        ("-k",),
    ),
    Case(
        "fit-existing-labels-kept-on-bad-params-path",
        [*FIT, "-k", "2", "--labels", "{d}/labels.csv", "--params", "{d}/nodir/m.json"],
        DATA,
        ("does not exist",),
    ),
    Case(
        "fit-readonly-directory",
        [*FIT, "-k", "2", "--labels", "{d}/ro/l.csv"],
        DATA,
        ("permission denied",),
        root_ok=False,
        setup=["ro"],
    ),
    # -- fit: warm starts, weights, families
    Case(
        "fit-init-neither-method-nor-file",
        [*FIT, "-k", "2", "--init", "{d}/nope.json", "--labels", "{d}/labels.csv"],
        USAGE,
        ("--init", "kmeans", "model file"),
    ),
    Case("fit-init-directory", [*FIT, "-k", "2", "--init", "{d}/adir"], USAGE, ("model file",)),
    Case(
        "fit-init-not-a-model",
        [*FIT, "-k", "2", "--init", "{d}/good.csv", "--labels", "{d}/labels.csv"],
        DATA,
        ("not an emcli model", "fit --params"),
    ),
    Case(
        "fit-init-future-model",
        [*FIT, "-k", "3", "--init", "{d}/future.json", "--params", "{d}/m.json"],
        DATA,
        ("schema", "upgrade emcli"),
    ),
    Case(
        "fit-init-with-a-range",
        [*FIT, "-k", "2..3", "--init", "{d}/model.json"],
        USAGE,
        ("--init", "one -k"),
    ),
    Case(
        "fit-weights-also-a-feature",
        ["fit", "{d}/weighted.csv", "-k", "2", "-c", "a,w", "--weights", "w"],
        USAGE,
        ("--weights", "-c/--columns", "not a feature"),
    ),
    Case(
        "fit-weights-unknown-column",
        ["fit", "{d}/weighted.csv", "-k", "2", "--weights", "nope", "--labels", "{d}/labels.csv"],
        DATA,
        ("'nope'", "--weights"),
        needs="weights column",
    ),
    Case(
        "fit-weights-not-numeric",
        ["fit", "{d}/textweights.csv", "-k", "2", "--weights", "w", "--params", "{d}/m.json"],
        DATA,
        ("'w'", "row"),
        needs="weights column",
    ),
    Case("fit-unknown-family", [*FIT, "-k", "2", "--family", "weibull"], USAGE, ("--family",)),
    Case(
        "fit-imputed-on-the-stream-engine",
        [*FIT, "-k", "2", "--engine", "stream", "--imputed", "{d}/filled.csv"],
        USAGE,
        ("--imputed", "--engine memory"),
    ),
    # -- predict
    Case(
        "predict-model-missing",
        ["predict", "{d}/nope.json", "{d}/good.csv"],
        DATA,
        ("does not exist",),
    ),
    Case(
        "predict-model-is-directory",
        ["predict", "{d}/adir", "{d}/good.csv"],
        DATA,
        ("is a directory", "fit --params"),
    ),
    Case(
        "predict-model-not-a-model",
        ["predict", "{d}/notmodel.json", "{d}/good.csv"],
        DATA,
        ("not an emcli model",),
    ),
    Case(
        "predict-model-not-json",
        ["predict", "{d}/notjson.json", "{d}/good.csv"],
        DATA,
        ("not an emcli model", "fit --params"),
    ),
    Case(
        "predict-model-a-csv",
        ["predict", "{d}/good.csv", "{d}/good.csv"],
        DATA,
        ("not an emcli model", "fit --params"),
    ),
    Case(
        "predict-model-json-list",
        ["predict", "{d}/list.json", "{d}/good.csv"],
        DATA,
        ("not an emcli model",),
    ),
    Case(
        "predict-model-future-version",
        ["predict", "{d}/future.json", "{d}/good.csv"],
        DATA,
        ("schema", "upgrade emcli"),
    ),
    Case(
        "predict-model-bad-weights",
        ["predict", "{d}/badweights.json", "{d}/good.csv"],
        DATA,
        ("weights", "write it again"),
    ),
    Case(
        "predict-model-nan", ["predict", "{d}/nanmodel.json", "{d}/good.csv"], DATA, ("model file",)
    ),
    Case(
        "predict-input-missing",
        ["predict", "{d}/model.json", "{d}/nope.csv"],
        DATA,
        ("does not exist",),
    ),
    Case("predict-input-empty", ["predict", "{d}/model.json", "{d}/empty.csv"], DATA, ("empty",)),
    Case(
        "score-input-header-only-bad-delimiter",
        ["score", "{d}/model.json", "{d}/header.csv", "--delimiter", "ab"],
        USAGE,
        ("--delimiter",),
    ),
    Case(
        "predict-input-garbage",
        ["predict", "{d}/model.json", "{d}/garbage.csv"],
        DATA,
        ("garbage.csv",),
    ),
    Case(
        "predict-input-lacks-column", ["predict", "{d}/model.json", "{d}/onlya.csv"], DATA, ("'b'",)
    ),
    Case(
        "predict-input-text-column", ["predict", "{d}/model.json", "{d}/textb.csv"], DATA, ("'b'",)
    ),
    Case("predict-input-inf", ["predict", "{d}/model.json", "{d}/inf.csv"], DATA, ("row",)),
    Case(
        "predict-input-ragged",
        ["predict", "{d}/model.json", "{d}/ragged.csv"],
        DATA,
        ("ragged.csv",),
    ),
    Case(
        "predict-wrong-column-count",
        ["predict", "{d}/model.json", "{d}/good.csv", "-c", "a"],
        USAGE,
        ("-c/--columns", "2"),
    ),
    Case("predict-both-stdin", ["predict", "-", "-"], USAGE, ("standard input",)),
    Case(
        "predict-labels-parent-missing",
        ["predict", "{d}/model.json", "{d}/good.csv", "--labels", "{d}/nodir/l.csv"],
        DATA,
        ("does not exist",),
    ),
    Case(
        "predict-output-dir-is-file",
        ["predict", "{d}/model.json", "{d}/good.csv", "-o", "{d}/afile"],
        DATA,
        ("not a directory",),
    ),
    Case(
        "predict-existing-labels-kept",
        ["predict", "{d}/model.json", "{d}/ragged.csv", "--labels", "{d}/labels.csv"],
        DATA,
        ("ragged.csv",),
    ),
    # -- score
    Case(
        "score-model-future-version",
        ["score", "{d}/future.json", "{d}/good.csv"],
        DATA,
        ("schema", "upgrade emcli"),
    ),
    Case(
        "score-model-not-a-model",
        ["score", "{d}/notmodel.json", "{d}/good.csv"],
        DATA,
        ("not an emcli model",),
    ),
    Case(
        "score-input-directory", ["score", "{d}/model.json", "{d}/adir"], DATA, ("is a directory",)
    ),
    Case(
        "score-input-csv-named-parquet",
        ["score", "{d}/model.json", "{d}/csv.parquet"],
        DATA,
        ("Parquet", "--format csv"),
    ),
    Case(
        "score-model-truncated",
        ["score", "{d}/truncated.json", "{d}/good.csv"],
        DATA,
        ("not an emcli model", "fit --params"),
    ),
    Case(
        "score-lowest-zero",
        ["score", "{d}/model.json", "{d}/good.csv", "--lowest", "0"],
        USAGE,
        ("--lowest",),
    ),
    Case(
        "score-below-nan",
        ["score", "{d}/model.json", "{d}/good.csv", "--below", "nan"],
        USAGE,
        ("--below",),
    ),
    Case(
        "score-below-text",
        ["score", "{d}/model.json", "{d}/good.csv", "--below", "low"],
        USAGE,
        ("--below",),
    ),
    Case(
        "score-output-parent-is-file",
        ["score", "{d}/model.json", "{d}/good.csv", "--output", "{d}/afile/s.csv"],
        DATA,
        ("is a file, not a directory",),
    ),
    Case(
        "score-existing-output-kept",
        ["score", "{d}/model.json", "{d}/ragged.csv", "--output", "{d}/labels.csv"],
        DATA,
        ("ragged.csv",),
    ),
    # -- sample
    Case("sample-n-missing", ["sample", "{d}/model.json"], USAGE, ("-n",)),
    Case("sample-n-negative", ["sample", "{d}/model.json", "-n", "-5"], USAGE, ("-n",)),
    Case("sample-n-text", ["sample", "{d}/model.json", "-n", "many"], USAGE, ("-n",)),
    Case(
        "sample-seed-negative",
        ["sample", "{d}/model.json", "-n", "5", "--seed", "-1"],
        USAGE,
        ("--seed",),
    ),
    Case(
        "sample-model-not-a-model",
        ["sample", "{d}/notmodel.json", "-n", "5"],
        DATA,
        ("not an emcli model",),
    ),
    Case(
        "sample-model-future-version",
        ["sample", "{d}/future.json", "-n", "5"],
        DATA,
        ("upgrade emcli",),
    ),
    Case(
        "sample-model-empty-stdin",
        ["sample", "-", "-n", "5"],
        DATA,
        ("not an emcli model",),
        stdin=b"",
    ),
    Case(
        "sample-output-parent-missing",
        ["sample", "{d}/model.json", "-n", "5", "--output", "{d}/nodir/s.csv"],
        DATA,
        ("does not exist",),
    ),
    Case(
        "sample-output-is-directory",
        ["sample", "{d}/model.json", "-n", "5", "--output", "{d}/adir"],
        DATA,
        ("is a directory",),
    ),
    Case(
        "sample-existing-output-kept",
        ["sample", "{d}/future.json", "-n", "5", "--output", "{d}/labels.csv"],
        DATA,
        ("upgrade emcli",),
    ),
    # -- describe
    Case("describe-model-missing", ["describe", "{d}/nope.json"], DATA, ("does not exist",)),
    Case("describe-model-empty", ["describe", "{d}/empty.csv"], DATA, ("not an emcli model",)),
    Case(
        "describe-model-not-a-model",
        ["describe", "{d}/notmodel.json"],
        DATA,
        ("not an emcli model",),
    ),
    Case(
        "describe-model-future-version",
        ["describe", "{d}/future.json", "--json"],
        DATA,
        ("upgrade emcli",),
    ),
    Case(
        "describe-model-future-stdin",
        ["describe", "-"],
        DATA,
        ("upgrade emcli",),
        stdin="@future.json",
    ),
    # -- plot
    Case(
        "plot-model-missing",
        ["plot", "{d}/nope.json", "-o", "{d}/p.png"],
        DATA,
        ("does not exist",),
    ),
    Case(
        "plot-model-not-a-model",
        ["plot", "{d}/notmodel.json", "-o", "{d}/p.png"],
        DATA,
        ("not an emcli model",),
    ),
    Case("plot-output-missing", ["plot", "{d}/model.json"], USAGE, ("-o",)),
    Case(
        "plot-unknown-image-format", ["plot", "{d}/model.json", "-o", "{d}/p.gif"], USAGE, (".png",)
    ),
    Case(
        "plot-output-parent-missing",
        ["plot", "{d}/model.json", "-o", "{d}/nodir/p.png"],
        DATA,
        ("does not exist",),
    ),
    Case(
        "plot-input-lacks-column",
        ["plot", "{d}/model.json", "{d}/onlya.csv", "--kind", "clusters", "-o", "{d}/p.png"],
        DATA,
        ("'b'",),
    ),
    Case(
        "plot-existing-image-kept",
        ["plot", "{d}/model.json", "{d}/ragged.csv", "--kind", "clusters", "-o", "{d}/image.png"],
        DATA,
        ("ragged.csv",),
    ),
    # -- any command
    Case("unknown-command", ["cluster", "{d}/good.csv"], USAGE, ("cluster",)),
]


def snapshot(directory: Path) -> dict[str, str]:
    """Every path under ``directory`` with a digest of its content (directories: 'dir')."""
    out = {}
    for path in sorted(directory.rglob("*")):
        key = str(path.relative_to(directory))
        out[key] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def test_the_corpus_is_large_and_covers_every_command():
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)
    commands = {c.args[0] for c in CASES}
    assert {"fit", "predict", "score", "sample", "describe", "plot"} <= commands


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, files: Path, monkeypatch):
    if not case.root_ok and os.geteuid() == 0:
        pytest.skip("root ignores file permissions")
    if case.needs and not LIBRARY[case.needs]():
        pytest.skip(f"the library side of '{case.needs}' is not on this branch yet")
    if "ro" in case.setup:
        (files / "ro").mkdir(exist_ok=True)
        (files / "ro").chmod(0o555)
    monkeypatch.chdir(files)
    before = snapshot(files)
    args = [a.replace("{d}", str(files)) for a in case.args]
    stdin = case.stdin
    if isinstance(stdin, str):
        stdin = (files / stdin[1:]).read_bytes()
    result = run(*args, stdin=stdin)
    assert result.exit_code == case.code, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for fragment in case.hint:
        if isinstance(fragment, re.Pattern):
            assert fragment.search(lines[0]), (fragment.pattern, lines[0])
        else:
            assert fragment in lines[0], lines[0]
    assert result.stdout == ""
    assert snapshot(files) == before
    assert (files / "labels.csv").read_bytes() == KNOWN
    assert (files / "image.png").read_bytes() == KNOWN


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sysfs is Linux's")
def test_unwritable_directory_even_for_root(files: Path, monkeypatch):
    # Root ignores a 0o555 directory (fit-readonly-directory skips then); sysfs refuses new
    # files to everyone, root included, so the permission path runs in CI as root too.
    monkeypatch.chdir(files)
    before = snapshot(files)
    fit = [a.replace("{d}", str(files)) for a in FIT]
    result = run(*fit, "-k", "2", "--labels", "/sys/emcli-labels.csv", "--params", "m.json")
    assert result.exit_code == DATA, result.stderr
    assert result.stderr.startswith("Error: cannot write") and "ermission denied" in result.stderr
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
    assert result.stdout == "" and snapshot(files) == before  # no model file either
    assert not os.path.exists("/sys/emcli-labels.csv")
