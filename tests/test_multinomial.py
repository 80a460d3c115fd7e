"""Documents: the multinomial family (issue 17).

Oracles: planted topics drawn from a known mixture (recovered, scored with scikit-learn's
ARI), the log-likelihood recomputed from the model file with counts made by scikit-learn's
CountVectorizer, the M-step's closed form on dense arrays, the penalised objective never
decreasing, frequency weights against repeated rows, the stream engine against memory.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.io
import scipy.sparse as sp
from scipy.special import logsumexp
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

import emcli
from emcli.em import likelihood_decreases
from emcli.families import get_family
from tests.clirun import run

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"


def planted(k=4, n_terms=150, n_docs=600, length=60, seed=0, concentration=0.1):
    """Counts (n, V) from a known mixture of multinomials, the topics and the labels."""
    rng = np.random.default_rng(seed)
    theta = rng.dirichlet(np.full(n_terms, concentration), size=k)
    weights = rng.dirichlet(np.full(k, 5.0))
    z = rng.choice(k, size=n_docs, p=weights)
    lengths = rng.poisson(length, size=n_docs) + 5
    counts = np.stack([rng.multinomial(lengths[i], theta[z[i]]) for i in range(n_docs)])
    return counts.astype(np.float64), theta, z


def as_texts(counts, rng_seed=1):
    """Each row of counts as a text of made-up words (word j is 'term<j>x'), shuffled."""
    rng = np.random.default_rng(rng_seed)
    docs = []
    for row in counts.astype(int):
        words = np.repeat([f"term{j}x" for j in range(row.size)], row)
        rng.shuffle(words)
        docs.append(" ".join(words))
    return docs


def independent_log_likelihood(counts, weights, word_probabilities):
    log_theta = np.log(np.maximum(np.asarray(word_probabilities), 1e-300))
    joint = np.asarray(counts @ log_theta.T) + np.log(np.asarray(weights))
    return float(logsumexp(joint, axis=1).sum())


# ---------------------------------------------------------------------------- library
def test_planted_topics_are_recovered():
    counts, _, z = planted()
    model = emcli.fit(sp.csr_matrix(counts), 4, family="multinomial", seed=0)
    labels = model.predict(sp.csr_matrix(counts))
    assert adjusted_rand_score(z, labels) >= 0.95
    assert model.family_name == "multinomial"
    assert model.n_parameters == 3 + 4 * (150 - 1)


def test_texts_and_counts_give_the_same_fit():
    counts, _, z = planted(n_docs=300, seed=3)
    docs = as_texts(counts)
    tok = {"stop_words": "none", "min_df": 1, "max_df": 1.0, "max_vocab": 20000}
    from emcli.data.text import Tokeniser

    by_text = emcli.fit(
        docs,
        4,
        family="multinomial",
        tokeniser=Tokeniser.from_dict({**Tokeniser().to_dict(), **tok}),
        seed=2,
    )
    keep = counts.sum(axis=0) > 0
    names = [f"term{j}x" for j in np.flatnonzero(keep)]
    order = np.argsort(names)
    by_counts = emcli.fit(
        sp.csr_matrix(counts[:, keep][:, order]),
        4,
        family="multinomial",
        columns=[names[i] for i in order],
        seed=2,
    )
    assert by_text.columns == sorted(names)
    assert by_text.log_likelihood == pytest.approx(by_counts.log_likelihood, rel=1e-12)
    assert adjusted_rand_score(by_text.predict(docs), z) >= 0.95


def test_m_step_is_the_closed_form():
    counts, _, _ = planted(n_docs=200, seed=4)
    rng = np.random.default_rng(0)
    resp = rng.dirichlet(np.ones(3), size=counts.shape[0])
    weights = rng.integers(1, 4, size=counts.shape[0]).astype(float)
    for alpha in (0.0, 0.01, 2.0):
        fam = get_family("multinomial", vocabulary=[f"w{j}" for j in range(150)], alpha=alpha)
        params = fam.from_responsibilities(sp.csr_matrix(counts), resp, weights)
        rw = resp * weights[:, None]
        n_kw = rw.T @ counts  # dense reference
        theta = (alpha + n_kw) / (150 * alpha + n_kw.sum(axis=1, keepdims=True))
        np.testing.assert_allclose(params.word_probabilities, theta, rtol=1e-12)
        np.testing.assert_allclose(params.weights, rw.sum(axis=0) / rw.sum(), rtol=1e-12)


@pytest.mark.parametrize("alpha", [0.0, 0.01, 1.0])
def test_em_never_lowers_the_penalised_objective(alpha):
    counts, _, _ = planted(n_docs=250, k=3, seed=5, length=30)
    x = sp.csr_matrix(counts)
    objective = []
    for steps in range(12):
        m = emcli.fit(
            x,
            3,
            family="multinomial",
            alpha=alpha,
            init="random",
            n_restarts=1,
            max_iter=steps,
            tol=0,
            seed=1,
        )
        theta = m.params.word_probabilities
        ll = independent_log_likelihood(counts, m.weights, theta)
        # the likelihood reported is that of the returned parameters
        assert m.log_likelihood == pytest.approx(ll, rel=1e-12)
        objective.append(ll + alpha * float(np.log(np.maximum(theta, 1e-300)).sum()))
    assert all(b >= a - 1e-9 * abs(a) for a, b in zip(objective, objective[1:], strict=False))
    if alpha == 0.0:
        assert likelihood_decreases(m.history) == []


def test_frequency_weights_equal_repeated_rows():
    counts, _, _ = planted(n_docs=120, seed=6)
    reps = np.random.default_rng(1).integers(1, 4, size=counts.shape[0])
    weighted = emcli.fit(
        sp.csr_matrix(counts),
        3,
        family="multinomial",
        sample_weight=reps,
        init="kmeans",
        n_restarts=1,
        seed=0,
        tol=0,
        max_iter=15,
    )
    repeated = emcli.fit(
        sp.csr_matrix(np.repeat(counts, reps, axis=0)),
        3,
        family="multinomial",
        init=weighted,
        n_restarts=1,
        tol=0,
        max_iter=0,
    )
    assert weighted.n_samples == int(reps.sum())
    # the weighted fit's parameters, scored on the repeated rows, give the same likelihood
    assert weighted.log_likelihood == pytest.approx(repeated.log_likelihood, rel=1e-12)
    again = emcli.fit(
        sp.csr_matrix(np.repeat(counts, reps, axis=0)),
        3,
        family="multinomial",
        init=weighted,
        n_restarts=1,
        tol=0,
        max_iter=3,
    )
    onward = emcli.fit(
        sp.csr_matrix(counts),
        3,
        family="multinomial",
        sample_weight=reps,
        init=weighted,
        n_restarts=1,
        tol=0,
        max_iter=3,
    )
    np.testing.assert_allclose(
        again.params.word_probabilities, onward.params.word_probabilities, rtol=1e-10
    )


def test_empty_documents_get_the_weights_and_a_note():
    counts, _, _ = planted(n_docs=200, seed=7)
    counts[:5] = 0
    m = emcli.fit(sp.csr_matrix(counts), 3, family="multinomial", seed=0)
    resp = m.predict_proba(sp.csr_matrix(counts[:5]))
    np.testing.assert_allclose(resp, np.tile(m.weights, (5, 1)), rtol=1e-12)
    assert m.score_samples(sp.csr_matrix(counts[:5])).tolist() == [0.0] * 5
    assert any("5 of 200 documents" in n for n in m.notes)


def test_an_empty_cluster_is_reported_not_nan():
    counts, _, _ = planted(n_docs=60, k=2, seed=8)
    fam = get_family("multinomial", vocabulary=[f"w{j}" for j in range(150)])
    params = fam.from_responsibilities(sp.csr_matrix(counts), np.c_[np.ones(60), np.zeros(60)])
    assert fam.collapsed(params, None, 60.0) == [1]
    assert np.all(np.isfinite(params.word_probabilities))


# ---------------------------------------------------------------------------- CLI
@pytest.fixture
def corpus(tmp_path):
    counts, _, z = planted(n_docs=400, seed=11)
    docs = as_texts(counts)
    path = tmp_path / "docs.txt"
    path.write_text("\n".join(docs) + "\n", encoding="utf-8")
    return path, docs, z


def test_cli_text_file_model_file_and_top_words(corpus, tmp_path):
    path, docs, z = corpus
    out = tmp_path / "m.json"
    r = run(
        "fit",
        path,
        "-k",
        "4",
        "--min-df",
        "1",
        "--params",
        out,
        "--labels",
        tmp_path / "l.csv",
        "--top-words",
        "-",
        "--n-top-words",
        "5",
    )
    assert r.exit_code == 0, r.output
    top = pd.read_csv(pd.io.common.StringIO(r.stdout))
    assert list(top.columns) == ["cluster", "rank", "word", "probability"]
    assert (
        len(top) == 20
        and top.groupby("cluster")["rank"].apply(list).tolist() == [[1, 2, 3, 4, 5]] * 4
    )
    data = json.loads(out.read_text())
    assert data["family"] == "multinomial"
    for key in ("vocabulary", "word_probabilities", "weights"):
        assert key in data
    assert data["settings"]["alpha"] == 0.01
    assert data["settings"]["tokeniser"]["min_df"] == 1
    # the log-likelihood from the model file, with counts made by scikit-learn
    cv = CountVectorizer(token_pattern=r"(?u)[^\W_]{2,}", vocabulary=data["vocabulary"])
    counts = cv.transform(docs)
    ll = independent_log_likelihood(counts, data["weights"], data["word_probabilities"])
    assert data["log_likelihood"] == pytest.approx(ll, rel=1e-10)
    labels = pd.read_csv(tmp_path / "l.csv")["cluster"].to_numpy()
    assert adjusted_rand_score(z, labels) >= 0.95
    # top words are the most probable words of each cluster
    theta = np.asarray(data["word_probabilities"])
    best = [data["vocabulary"][i] for i in np.argsort(-theta[0], kind="stable")[:5]]
    assert top[top.cluster == 0].word.tolist() == best


def test_cli_predict_score_describe_on_new_documents(corpus, tmp_path):
    path, docs, _ = corpus
    model = tmp_path / "m.json"
    assert (
        run(
            "fit", path, "-k", "4", "--params", model, "--labels", tmp_path / "l.csv", "-q"
        ).exit_code
        == 0
    )
    new = tmp_path / "new.txt"
    # the first training documents, one with unseen words added, one with only unseen words
    new.write_text(docs[0] + "\n" + docs[1] + " zzunseen qqnever\n" + "zzunseen only\n")
    r = run("predict", model, new)
    assert r.exit_code == 0, r.output
    got = pd.read_csv(pd.io.common.StringIO(r.stdout))["cluster"].tolist()
    fitted = pd.read_csv(tmp_path / "l.csv")["cluster"].tolist()
    weights = json.loads(model.read_text())["weights"]
    assert got == [fitted[0], fitted[1], int(np.argmax(weights))]
    s = run("score", model, new)
    assert s.exit_code == 0, s.output
    scores = pd.read_csv(pd.io.common.StringIO(s.stdout))
    assert scores.iloc[2, -1] == 0.0  # no known word: log-density 0 (an empty document)
    d = run("describe", model)
    assert d.exit_code == 0 and "term" in d.stdout


def test_cli_stream_equals_memory(corpus, tmp_path):
    path, _, _ = corpus
    for engine in ("memory", "stream"):
        r = run(
            "fit",
            path,
            "-k",
            "3",
            "-n",
            "3",
            "--engine",
            engine,
            "--block-rows",
            "70",
            "--params",
            tmp_path / f"{engine}.json",
            "-q",
        )
        assert r.exit_code == 0, r.output
    a, b = (json.loads((tmp_path / f"{e}.json").read_text()) for e in ("memory", "stream"))
    assert a["vocabulary"] == b["vocabulary"]
    assert b["log_likelihood"] == pytest.approx(a["log_likelihood"], rel=1e-10)
    np.testing.assert_allclose(
        b["word_probabilities"], a["word_probabilities"], rtol=1e-8, atol=1e-14
    )


def test_cli_mtx_with_vocabulary(tmp_path):
    counts, _, z = planted(n_docs=300, seed=12)
    scipy.io.mmwrite(tmp_path / "c.mtx", sp.coo_matrix(counts))
    terms = [f"word{j}" for j in range(counts.shape[1])]
    (tmp_path / "v.txt").write_text("\n".join(terms) + "\n")
    r = run(
        "fit",
        tmp_path / "c.mtx",
        "--vocabulary",
        tmp_path / "v.txt",
        "-k",
        "4",
        "--params",
        tmp_path / "m.json",
        "--labels",
        tmp_path / "l.csv",
    )
    assert r.exit_code == 0, r.output
    data = json.loads((tmp_path / "m.json").read_text())
    assert data["vocabulary"] == terms and "tokeniser" not in data["settings"]
    labels = pd.read_csv(tmp_path / "l.csv")["cluster"]
    assert adjusted_rand_score(z, labels) >= 0.95
    p = run("predict", tmp_path / "m.json", tmp_path / "c.mtx")
    assert p.exit_code == 0, p.output
    assert pd.read_csv(pd.io.common.StringIO(p.stdout))["cluster"].tolist() == labels.tolist()
    bad = tmp_path / "short.txt"
    bad.write_text("a\nb\n")
    e = run("fit", tmp_path / "c.mtx", "--vocabulary", bad, "-k", "2")
    assert e.exit_code == 1 and e.stderr.startswith("Error: ") and len(e.stderr.splitlines()) == 1


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_cli_text_column_of_a_table(corpus, tmp_path, fmt):
    _, docs, z = corpus
    frame = pd.DataFrame({"id": range(len(docs)), "body": docs})
    path = tmp_path / f"t.{fmt}"
    frame.to_csv(path, index=False) if fmt == "csv" else frame.to_parquet(path)
    r = run("fit", path, "--text-column", "body", "-k", "4", "--labels", "-", "-q")
    assert r.exit_code == 0, r.output
    labels = pd.read_csv(pd.io.common.StringIO(r.stdout))["cluster"]
    assert adjusted_rand_score(z, labels) >= 0.95


def test_cli_selects_k_by_bic(tmp_path):
    counts, _, _ = planted(k=3, n_docs=300, seed=13)
    scipy.io.mmwrite(tmp_path / "c.mtx", sp.coo_matrix(counts))
    r = run(
        "fit",
        tmp_path / "c.mtx",
        "-k",
        "1..5",
        "--selection",
        tmp_path / "s.csv",
        "--params",
        tmp_path / "m.json",
        "-q",
    )
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "m.json").read_text())["n_components"] == 3
    table = pd.read_csv(tmp_path / "s.csv")
    assert sorted(table["components"]) == [1, 2, 3, 4, 5]


def test_cli_warm_start_continues_the_fit(corpus, tmp_path):
    path, _, _ = corpus
    first = tmp_path / "a.json"
    common = ("-k", "3", "--tol", "0", "-n", "1", "--init", "random", "-q")
    assert run("fit", path, *common, "--max-iter", "4", "--params", first).exit_code == 0
    r = run(
        "fit",
        path,
        "-k",
        "3",
        "--tol",
        "0",
        "--max-iter",
        "4",
        "--init",
        first,
        "--params",
        tmp_path / "b.json",
        "-q",
    )
    assert r.exit_code == 0, r.output
    assert run("fit", path, *common, "--max-iter", "8", "--params", tmp_path / "c.json")[0] == 0
    b, c = (json.loads((tmp_path / f).read_text()) for f in ("b.json", "c.json"))
    assert b["log_likelihood"] == pytest.approx(c["log_likelihood"], rel=1e-10)


def test_cli_same_seed_same_bytes(corpus, tmp_path):
    path, _, _ = corpus
    for i in (1, 2):
        assert (
            run(
                "fit",
                path,
                "-k",
                "3",
                "--params",
                tmp_path / f"{i}.json",
                "--labels",
                tmp_path / f"{i}.csv",
                "--top-words",
                tmp_path / f"{i}.top",
                "-q",
            )[0]
            == 0
        )
    for ext in ("json", "csv", "top"):
        assert (tmp_path / f"1.{ext}").read_bytes() == (tmp_path / f"2.{ext}").read_bytes()


@pytest.mark.parametrize(
    "args, code",
    [
        (["--covariance", "diag"], 2),
        (["--family", "gaussian"], 2),
        (["--vocabulary", "x.txt"], 2),
        (["--scheduler", "tcp://127.0.0.1:1", "--engine", "stream"], 2),
        (["-k", "100000"], 1),
        (["--with-input", "--labels", "-"], 2),
    ],
)
def test_cli_document_usage_errors(corpus, args, code):
    path, _, _ = corpus
    r = run("fit", path, *(["-k", "2"] if "-k" not in args else []), *args)
    assert r.exit_code == code, r.output
    assert r.stderr.splitlines()[-1].startswith("Error") and "Traceback" not in r.stderr


def test_cli_tokeniser_options_need_documents(tmp_path):
    r = run("fit", SAMPLE / "classic.csv", "-k", "2", "--min-df", "3")
    assert r.exit_code == 2 and "--min-df" in r.stderr
    r = run("fit", SAMPLE / "classic.csv", "-k", "2", "--top-words", "-")
    assert r.exit_code == 2 and "--top-words" in r.stderr


def test_cli_empty_and_malformed_inputs(tmp_path, corpus):
    empty = tmp_path / "e.txt"
    empty.write_text("")
    r = run("fit", empty, "-k", "2", "--params", tmp_path / "m.json")
    assert r.exit_code == 1 and r.stderr.startswith("Error: ")
    assert not (tmp_path / "m.json").exists()
    path, _, _ = corpus
    model = tmp_path / "m.json"
    assert run("fit", path, "-k", "2", "--params", model, "-q").exit_code == 0
    data = json.loads(model.read_text())
    data["word_probabilities"] = data["word_probabilities"][:1]
    model.write_text(json.dumps(data))
    r = run("predict", model, path)
    assert r.exit_code == 1 and r.stderr.startswith("Error: ") and "word_probabilities" in r.stderr


def test_sample_corpus_clusters_match_the_books():
    """The shipped corpus (six public-domain novels): the clusters match the books far
    better than chance (measured: NMI 0.64 with the default settings)."""
    frame = pd.read_csv(SAMPLE / "books.csv")
    model = emcli.fit(frame["text"].tolist(), 6, family="multinomial", seed=0)
    labels = model.predict(frame["text"].tolist())
    assert normalized_mutual_info_score(frame["book"], labels) >= 0.5


def test_model_file_follows_the_schema(corpus, tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    path, _, _ = corpus
    schema = json.loads(
        (Path(__file__).resolve().parents[1] / "emcli/schema/model.schema.json").read_text()
    )
    assert run("fit", path, "-k", "2", "--params", tmp_path / "m.json", "-q").exit_code == 0
    data = json.loads((tmp_path / "m.json").read_text())
    jsonschema.validate(data, schema)
    for key in data:  # every field written is documented
        assert schema["properties"][key].get("description"), key
    for key in data["settings"]:
        assert key in schema["properties"]["settings"]["properties"], key
    del data["word_probabilities"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, schema)


def test_cli_weights_column_equals_repeated_documents(corpus, tmp_path):
    _, docs, _ = corpus
    docs = docs[:150]
    reps = np.random.default_rng(3).integers(1, 4, size=len(docs))
    pd.DataFrame({"text": docs, "n": reps}).to_csv(tmp_path / "w.csv", index=False)
    pd.DataFrame({"text": np.repeat(docs, reps)}).to_csv(tmp_path / "r.csv", index=False)
    common = ("--text-column", "text", "-k", "3", "--min-df", "1", "--max-df", "1")
    w = run(
        "fit",
        tmp_path / "w.csv",
        *common,
        "--weights",
        "n",
        "--params",
        tmp_path / "w.json",
        "-q",
        "--init",
        "kmeans",
        "-n",
        "1",
        "--tol",
        "0",
        "--max-iter",
        "10",
    )
    assert w.exit_code == 0, w.output
    r = run(
        "fit",
        tmp_path / "r.csv",
        *common,
        "--init",
        tmp_path / "w.json",
        "--tol",
        "0",
        "--max-iter",
        "0",
        "--params",
        tmp_path / "r.json",
        "-q",
    )
    assert r.exit_code == 0, r.output
    a, b = (json.loads((tmp_path / f).read_text()) for f in ("w.json", "r.json"))
    assert a["n_samples"] == int(reps.sum()) == b["n_samples"]
    assert a["log_likelihood"] == pytest.approx(b["log_likelihood"], rel=1e-12)
    bad = run("fit", tmp_path / "w.csv", *common, "--weights", "text")
    assert bad.exit_code == 1 and bad.stderr.startswith("Error: ") and "weights" in bad.stderr


def test_count_table_on_the_stream_and_dask_engines(tmp_path, local_client):
    """A table whose columns are term counts: every engine gives the memory engine's fit."""
    from emcli.api import fit_file
    from emcli.engines.dask import DaskEngine

    counts, _, z = planted(n_docs=300, seed=2)
    path = tmp_path / "counts.csv"
    names = [f"t{j}" for j in range(counts.shape[1])]
    pd.DataFrame(counts.astype(int), columns=names).to_csv(path, index=False)
    memory = fit_file(str(path), 4, engine="memory", family="multinomial", n_restarts=2)
    assert memory.columns == names
    assert adjusted_rand_score(z, memory.predict(sp.csr_matrix(counts))) >= 0.95
    stream = fit_file(
        str(path), 4, engine="stream", family="multinomial", n_restarts=2, block_rows=70
    )
    with DaskEngine(str(path), client=local_client, block_rows=70) as engine:
        dask = emcli.api.fit_engine(engine, 4, family="multinomial", n_restarts=2)
    for other in (stream, dask):
        assert other.log_likelihood == pytest.approx(memory.log_likelihood, rel=1e-10)
        np.testing.assert_allclose(
            other.params.word_probabilities, memory.params.word_probabilities, rtol=1e-8, atol=1e-14
        )


def test_cli_sample_is_refused_in_one_line(corpus, tmp_path):
    path, _, _ = corpus
    assert run("fit", path, "-k", "2", "--params", tmp_path / "m.json", "-q").exit_code == 0
    r = run("sample", tmp_path / "m.json", "-n", "5")
    assert r.exit_code == 2 and r.stderr.startswith("Error: ") and len(r.stderr.splitlines()) == 1


def test_cli_a_corpus_above_the_memory_limit_streams(corpus, tmp_path):
    path, _, _ = corpus
    r = run("fit", path, "-k", "3", "--memory-limit", "1KB", "--params", tmp_path / "s.json")
    assert r.exit_code == 0, r.output
    assert "using --engine stream" in r.stderr
    assert run("fit", path, "-k", "3", "--params", tmp_path / "m.json", "-q").exit_code == 0
    a, b = (json.loads((tmp_path / f).read_text()) for f in ("s.json", "m.json"))
    assert a["log_likelihood"] == pytest.approx(b["log_likelihood"], rel=1e-10)


def test_cli_too_many_clusters_are_reported_empty_not_nan(tmp_path):
    path = tmp_path / "few.txt"
    path.write_text("alpha beta\ngamma delta\nalpha gamma\n")
    r = run(
        "fit", path, "-k", "3", "--min-df", "1", "--max-df", "1", "--params", tmp_path / "m.json"
    )
    assert r.exit_code == 0, r.output
    assert "cluster(s) empty" in r.stderr and "smaller -k" in r.stderr
    data = json.loads((tmp_path / "m.json").read_text())
    assert data["degenerate"] and data["collapsed_components"]
    assert all(np.isfinite(np.asarray(data["word_probabilities"])).ravel())


def test_the_scikit_learn_estimator_takes_the_multinomial_family():
    from emcli.sklearn import MixtureModel

    counts, _, z = planted(n_docs=200, seed=1)
    # (scikit-learn's n_init=1: one start, so a seed makes the test repeatable)
    estimator = MixtureModel(n_components=4, family="multinomial", random_state=0).fit(counts)
    assert adjusted_rand_score(z, estimator.predict(counts)) >= 0.95
    assert estimator.predict_proba(counts).shape == (200, 4)


def test_dask_engine_on_a_text_file_equals_memory(corpus, local_client):
    """The workers read byte ranges of the file, count words, and keep CSR partitions:
    the same vocabulary and fit as the memory engine."""
    from emcli.api import fit_engine
    from emcli.data.documents import DocumentSource
    from emcli.data.text import Tokeniser
    from emcli.engines.documents import open_documents

    path, _, _ = corpus
    source = DocumentSource(str(path), "text")
    tok = Tokeniser()
    with open_documents("memory", source, tok) as memory_engine:
        memory = fit_engine(memory_engine, 3, family="multinomial", n_restarts=2)
    with open_documents("dask", source, tok, block_rows=45, client=local_client) as engine:
        assert len(engine.parts) > 3
        dask = fit_engine(engine, 3, family="multinomial", n_restarts=2)
        labels = np.concatenate([dask.predict(x) for x, _ in engine.blocks()])
    assert dask.columns == memory.columns
    assert dask.log_likelihood == pytest.approx(memory.log_likelihood, rel=1e-10)
    np.testing.assert_allclose(
        dask.params.word_probabilities, memory.params.word_probabilities, rtol=1e-8, atol=1e-14
    )
    assert labels.tolist() == memory.predict(memory_engine.x).tolist()
