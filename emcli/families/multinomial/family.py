"""The mixture of multinomials (Nigam, McCallum, Thrun & Mitchell 2000): topic clusters by EM.

Each component j is a distribution theta_j over the V terms of the vocabulary, and each
document (a row of counts N_dw) belongs to one component::

    log p(d | j) = sum_w N_dw log theta_jw        (no multinomial coefficient: it does not
                                                   depend on the parameters)
    log L        = sum_d w_d log sum_j pi_j p(d | j)

with w_d the frequency weights (1 without ``--weights``).  The rows stay sparse (scipy CSR)
end to end: one E-step on a block is two sparse-dense products, ``X @ log(theta)^T`` (b x k)
and ``X^T @ R`` (V x k), and a log-sum-exp over k, so memory and time grow with the
non-zeros, not with documents x vocabulary.

M-step: pi_j = N_j / n and theta_jw = (alpha + n_jw) / (V alpha + n_j), with n_jw the
responsibility-weighted count of term w in component j and n_j = sum_w n_jw.  That is the
maximum a posteriori estimate under a symmetric Dirichlet(1 + alpha) prior on each theta_j,
so EM never lowers the penalised objective log L + alpha sum_jw log theta_jw
(``MultinomialStats.log_prior``); the reported log-likelihood is log L itself, which a
reader can recompute from the model file.  alpha = 0 is maximum likelihood (a term never
seen in a component then has probability 0, floored at ``LOG_FLOOR`` in the log).

Documents with no term of the vocabulary carry no information: they get the weights as
responsibilities and are left out of the statistics.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ...data.documents import is_sparse
from ...errors import UsageError

Array = NDArray[np.float64]
# --alpha's default for documents (docs/documents.md): a light smoothing that keeps every
# term possible in every cluster, so a new document is never impossible under a cluster.
DEFAULT_ALPHA = 0.01
# log(theta) never below this (alpha = 0: a term a component never saw).
LOG_FLOOR = math.log(1e-300)
# Rows per E-step block: a block's (rows x k) temporaries stay near BLOCK_CELLS cells, and
# a block has at most MAX_BLOCK_ROWS rows, so that a corpus has several blocks for the
# engine's threads (scipy's sparse products release the GIL: on 2 cores, 100k documents
# x 20k terms, k = 20, one iteration took 0.058 s in blocks of 12.5k-25k rows, 0.10 s whole).
BLOCK_CELLS = 1 << 21
MAX_BLOCK_ROWS = 16384
# A start's responsibilities are this far from the hard labels of its seeds.
START_SOFTNESS = 0.1
# Spherical k-means iterations of a "kmeans" start.
KMEANS_ITER = 20
# Annealed EM steps of a start (``MultinomialFamily.anneal``).
ANNEAL_STEPS = 8
TOP_WORDS = 10


@dataclass(frozen=True)
class MultinomialParams:
    """Mixing weights (k,) and word probabilities (k, V), each row summing to 1."""

    weights: Array
    word_probabilities: Array

    @property
    def n_components(self) -> int:
        return int(self.weights.shape[0])


@dataclass(frozen=True)
class MultinomialPlan:
    """What every block of one E-step needs: log weights (k,) and log theta^T (V, k)."""

    log_weights: Array
    log_theta_t: Array
    log_prior: float


@dataclass
class MultinomialStats:
    """Additive statistics: N_j (k,), n_wj (V, k), log L, the total weight, the plan's
    log prior (the same in every block, not summed)."""

    n_k: Array
    counts: Array
    log_likelihood: float
    n_samples: float
    log_prior: float = 0.0

    def __add__(self, other: MultinomialStats) -> MultinomialStats:
        return MultinomialStats(
            self.n_k + other.n_k,
            self.counts + other.counts,
            self.log_likelihood + other.log_likelihood,
            self.n_samples + other.n_samples,
            self.log_prior,
        )

    def __iadd__(self, other: MultinomialStats) -> MultinomialStats:
        self.n_k += other.n_k
        self.counts += other.counts
        self.log_likelihood += other.log_likelihood
        self.n_samples += other.n_samples
        return self

    @property
    def objective(self) -> float:
        """What EM increases: log L + the Dirichlet log prior (module docstring)."""
        return self.log_likelihood + self.log_prior


def logsumexp(a: Array) -> Array:
    """log sum exp over the rows' k entries (rows of -inf give -inf)."""
    top = np.max(a, axis=1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        return np.log(np.sum(np.exp(a - top), axis=1)) + top[:, 0]


def _csr(x: Any) -> Any:
    import scipy.sparse as sp

    if is_sparse(x):
        out = sp.csr_matrix(x, dtype=np.float64)
    else:
        out = sp.csr_matrix(np.asarray(x, dtype=np.float64))
    return out


class MultinomialFamily:
    """Documents as bags of words (module docstring).

    Args:
        vocabulary: the V terms, in the order of the count matrix's columns.
        alpha: the pseudo-count of every term in every component (None: ``DEFAULT_ALPHA``).
        tokeniser: the settings that turn text into counts (``emcli.data.text.Tokeniser``
            or its dict), recorded in the model file so predict applies the same rules;
            None when the counts came as a matrix.
    """

    name = "multinomial"

    def __init__(
        self,
        vocabulary: Sequence[str],
        alpha: float | None = None,
        tokeniser: Any = None,
    ) -> None:
        alpha = DEFAULT_ALPHA if alpha is None else float(alpha)
        if not (alpha >= 0 and math.isfinite(alpha)):
            raise UsageError("{alpha} must be a finite number >= 0")
        self.vocabulary = tuple(str(v) for v in vocabulary)
        if not self.vocabulary:
            raise UsageError("the vocabulary is empty: no term to fit")
        self.alpha = alpha
        if tokeniser is not None and not isinstance(tokeniser, dict):
            tokeniser = tokeniser.to_dict()
        self.tokeniser: dict[str, Any] | None = tokeniser

    def __repr__(self) -> str:
        return f"MultinomialFamily(V={len(self.vocabulary)}, alpha={self.alpha!r})"

    @property
    def n_terms(self) -> int:
        return len(self.vocabulary)

    # ---------------------------------------------------------------- rows
    def rows(self, x: Any) -> Any:
        """Documents as a CSR count matrix (n, V) in the model's vocabulary: a sparse or
        dense count matrix as it is, or texts (a list or Series of strings) tokenised by the
        model's rules (terms not in the vocabulary are ignored)."""
        if is_sparse(x) or (isinstance(x, np.ndarray) and x.dtype.kind in "fiub"):
            out = _csr(x)
        elif isinstance(x, str):
            raise UsageError("give a list of documents, not one string")
        else:
            docs = list(x.tolist() if hasattr(x, "tolist") else x)
            if docs and not all(isinstance(d, str) for d in docs):
                out = _csr(np.asarray(docs, dtype=np.float64))
            else:
                if self.tokeniser is None:
                    raise UsageError(
                        "this model was fitted on a document-term matrix, so it has no "
                        "tokeniser: give counts in its vocabulary, not texts"
                    )
                from ...data.text import Tokeniser, count_matrix

                return count_matrix(docs, self.vocabulary, Tokeniser.from_dict(self.tokeniser))
        if out.ndim != 2 or out.shape[1] != self.n_terms:
            raise ValueError(f"expected a count matrix of shape (n, {self.n_terms})")
        return out

    # ---------------------------------------------------------------- one iteration
    def prepare(
        self, params: MultinomialParams, dtype: Any = np.float64, n_rows: int | None = None
    ) -> MultinomialPlan:
        log_theta = np.maximum(_log(params.word_probabilities), LOG_FLOOR)
        prior = self.alpha * float(log_theta.sum()) if self.alpha > 0 else 0.0
        return MultinomialPlan(_log(params.weights), np.ascontiguousarray(log_theta.T), prior)

    def block_rows(self, plan: MultinomialPlan) -> int:
        return max(1024, min(MAX_BLOCK_ROWS, BLOCK_CELLS // max(1, plan.log_weights.size)))

    def _log_joint(self, x: Any, plan: MultinomialPlan) -> Array:
        joint = np.asarray(x @ plan.log_theta_t)
        joint += plan.log_weights
        return joint

    def e_step(
        self,
        x: Any,
        plan: MultinomialPlan,
        weights: Array | None = None,
        gaps: bool | None = None,
    ) -> MultinomialStats:
        x = _csr(x)
        k = plan.log_weights.size
        joint = self._log_joint(x, plan)
        norm = logsumexp(joint)
        resp = np.exp(joint - norm[:, None])
        empty = np.diff(x.indptr) == 0
        norm[empty] = 0.0
        resp[empty] = 0.0
        if weights is not None:
            resp *= weights[:, None]
            ll, n = float(norm @ weights), float(weights.sum())
        else:
            ll, n = float(norm.sum()), float(x.shape[0])
        counts = np.asarray(x.T @ resp) if x.shape[0] else np.zeros((self.n_terms, k))
        return MultinomialStats(resp.sum(axis=0), counts, ll, n, plan.log_prior)

    def refine(self, stats: MultinomialStats, plan: MultinomialPlan) -> None:
        return None

    def m_step(self, stats: MultinomialStats, plan: Any = None) -> MultinomialParams:
        n_k = stats.n_k + 10.0 * np.finfo(np.float64).eps
        counts = stats.counts.T + self.alpha  # (k, V)
        totals = counts.sum(axis=1, keepdims=True)
        theta = np.divide(
            counts, totals, out=np.full_like(counts, 1.0 / self.n_terms), where=totals > 0
        )
        return MultinomialParams(n_k / n_k.sum(), theta)

    # ---------------------------------------------------------------- applying
    def log_prob(self, x: Any, params: MultinomialParams) -> Array:
        plan = self.prepare(params)
        return np.asarray(_csr(x) @ plan.log_theta_t)

    def log_resp_and_norm(self, x: Any, params: MultinomialParams) -> tuple[Array, Array]:
        x = _csr(x)
        plan = self.prepare(params)
        n, k = x.shape[0], params.n_components
        log_resp, norm = np.empty((n, k)), np.empty(n)
        size = self.block_rows(plan)
        for s in range(0, n, size):
            joint = self._log_joint(x[s : s + size], plan)
            total = logsumexp(joint)
            log_resp[s : s + size] = joint - total[:, None]
            norm[s : s + size] = total
        empty = np.diff(x.indptr) == 0
        norm[empty] = 0.0
        if empty.any():
            log_resp[empty] = plan.log_weights[None, :]
        return log_resp, norm

    def sample(
        self, params: MultinomialParams, n_samples: int, rng: np.random.Generator
    ) -> tuple[Array, NDArray[np.int64]]:
        raise UsageError(
            "sampling documents needs a distribution of document lengths, which a multinomial "
            "mixture does not model; draw words with the word_probabilities of the model file"
        )

    def top_words(
        self, params: MultinomialParams, n: int = TOP_WORDS
    ) -> list[list[tuple[str, float]]]:
        """Each component's ``n`` most probable terms with their probabilities (ties by
        vocabulary order)."""
        out = []
        for theta in params.word_probabilities:
            order = np.lexsort((np.arange(theta.size), -theta))[:n]
            out.append([(self.vocabulary[i], float(theta[i])) for i in order])
        return out

    # ---------------------------------------------------------------- starts, checks
    def start(
        self,
        x: Any,
        n_components: int,
        method: str,
        rng: np.random.Generator,
        weights: Array | None = None,
    ) -> MultinomialParams:
        """Labels from spherical k-means on the L2-normalised tf-idf rows of the sample
        (``kmeans``, and ``hc``, which is the Gaussian family's start), from its k-means++
        seeds alone (``kmeans++``) or from k random documents as centres (``random``),
        softened by ``START_SOFTNESS``; then one M-step."""
        from .start import initial_labels

        x = _csr(x)
        keep = np.flatnonzero(np.diff(x.indptr) > 0)
        if keep.size < n_components:
            from ...errors import DataError

            raise DataError(
                f"only {keep.size} documents hold a term of the vocabulary, fewer than "
                f"{{n_components}} {n_components}"
            )
        if keep.size < x.shape[0]:
            x = x[keep]
        w = None if weights is None else weights[keep]
        labels = initial_labels(x, n_components, method, rng, w, KMEANS_ITER)
        resp = np.full((x.shape[0], n_components), START_SOFTNESS / n_components)
        resp[np.arange(x.shape[0]), labels] += 1.0 - START_SOFTNESS
        return self.anneal(x, self.from_responsibilities(x, resp, w), w)

    def anneal(
        self, x: Any, params: MultinomialParams, weights: Array | None = None
    ) -> MultinomialParams:
        """``ANNEAL_STEPS`` EM iterations on the sample at rising inverse temperatures beta
        (deterministic annealing, Ueda & Nakano 1998): responsibilities proportional to
        (pi_j p(d | j))^beta, beta geometric from 1 / (mean tokens per document) to 1.
        A document's log-likelihood is a sum over its words, so plain EM on documents is
        nearly hard from the first step and keeps the start's partition; the softened
        steps let clusters trade documents first.  Part of the start: the fit's EM from
        the result never lowers the likelihood."""
        lengths = np.asarray(x.sum(axis=1)).ravel()
        w = np.ones(x.shape[0]) if weights is None else weights
        mean = float(w @ lengths) / max(float(w.sum()), 1e-300)
        if not mean > 1.0:
            return params
        for beta in np.geomspace(1.0 / mean, 1.0, ANNEAL_STEPS):
            plan = self.prepare(params)
            joint = beta * self._log_joint(x, plan)
            resp = np.exp(joint - logsumexp(joint)[:, None])
            params = self.from_responsibilities(x, resp, weights)
        return params

    def from_responsibilities(
        self, x: Any, resp: Array, weights: Array | None = None
    ) -> MultinomialParams:
        x = _csr(x)
        rw = resp if weights is None else resp * weights[:, None]
        counts = np.asarray(x.T @ rw)
        return self.m_step(MultinomialStats(rw.sum(axis=0), counts, 0.0, 0.0))

    def reference_scale(self, x: Any) -> None:
        return None

    def collapsed(self, params: MultinomialParams, scale: Any, total_weight: float) -> list[int]:
        """Components with less than one document's worth of responsibility (empty)."""
        return [int(j) for j in np.flatnonzero(params.weights * total_weight < 1.0)]

    def collapse_warning(self, components: Sequence[int]) -> str:
        """The warning of a fit whose every start left a cluster empty."""
        n = len(components)
        return (
            f"every start left {n} cluster(s) empty (less than one document's worth of "
            "responsibility; the model file's collapsed_components lists them): the "
            "documents do not hold that many distinct clusters; try a smaller {n_components}"
        )

    def canonical_order(self, params: MultinomialParams) -> NDArray[np.intp]:
        """Decreasing weight, ties broken by the word probabilities (lexicographic)."""
        theta = params.word_probabilities
        keys = [theta[:, c] for c in range(theta.shape[1] - 1, -1, -1)]
        return np.lexsort([*keys, -params.weights])

    def permute(self, params: MultinomialParams, order: NDArray[np.intp]) -> MultinomialParams:
        return MultinomialParams(params.weights[order], params.word_probabilities[order])

    def n_parameters(self, params: MultinomialParams) -> int:
        """k - 1 weights and V - 1 free probabilities per component."""
        k = params.n_components
        return k - 1 + k * (self.n_terms - 1)

    def n_components(self, params: MultinomialParams) -> int:
        return params.n_components

    def mixing_weights(self, params: MultinomialParams) -> Array:
        return params.weights

    def notes(self, variances: Any, names: Sequence[str]) -> list[str]:
        return []

    # ---------------------------------------------------------------- vectors (SQUAREM)
    def to_vector(self, params: MultinomialParams) -> Array:
        return np.concatenate([params.weights, params.word_probabilities.ravel()])

    def from_vector(self, theta: Array, like: MultinomialParams) -> MultinomialParams | None:
        k = like.n_components
        if not np.all(np.isfinite(theta)) or not np.all(theta > 0.0):
            return None
        weights = theta[:k]
        probs = theta[k:].reshape(k, self.n_terms)
        return MultinomialParams(weights / weights.sum(), probs / probs.sum(axis=1, keepdims=True))

    # ---------------------------------------------------------------- model file
    def settings(self) -> dict[str, Any]:
        out: dict[str, Any] = {"alpha": self.alpha}
        if self.tokeniser is not None:
            out["tokeniser"] = dict(self.tokeniser)
        return out

    def params_to_dict(self, params: MultinomialParams) -> dict[str, Any]:
        return {
            "weights": params.weights.tolist(),
            "vocabulary": list(self.vocabulary),
            "word_probabilities": params.word_probabilities.tolist(),
        }

    def params_from_dict(self, data: dict[str, Any], schema_version: int) -> MultinomialParams:
        weights = np.asarray(data["weights"], dtype=np.float64)
        if weights.ndim != 1 or weights.size < 1 or not np.all(np.isfinite(weights)):
            raise ValueError("weights must be a non-empty list of numbers")
        if np.any(weights < 0) or abs(float(weights.sum()) - 1.0) > 1e-6:
            raise ValueError("the weights must be >= 0 and sum to 1")
        k = weights.size
        if "n_components" in data and data["n_components"] != k:
            raise ValueError(f"n_components is {data['n_components']!r} but there are {k} weights")
        try:
            theta = np.asarray(data["word_probabilities"], dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError("word_probabilities must be a k x V matrix of numbers") from None
        if theta.shape != (k, self.n_terms):
            raise ValueError(
                f"word_probabilities must be {k} x {self.n_terms} (components x vocabulary)"
            )
        if not np.all(np.isfinite(theta)) or np.any(theta < 0):
            raise ValueError("word_probabilities must be finite numbers >= 0")
        sums = theta.sum(axis=1)
        if np.any(np.abs(sums - 1.0) > 1e-6):
            raise ValueError("each row of word_probabilities must sum to 1")
        return MultinomialParams(weights / weights.sum(), theta / sums[:, None])

    @classmethod
    def from_model_file(cls, data: dict[str, Any]) -> MultinomialFamily:
        """The family a model file describes (its vocabulary, alpha, tokeniser)."""
        vocabulary = data["vocabulary"]
        if not isinstance(vocabulary, list) or not all(isinstance(v, str) for v in vocabulary):
            raise ValueError("vocabulary must be a list of terms")
        if len(set(vocabulary)) != len(vocabulary):
            raise ValueError("the vocabulary repeats a term")
        if list(data.get("columns", vocabulary)) != vocabulary:
            raise ValueError("columns must equal the vocabulary")
        settings = data.get("settings", {})
        alpha = settings.get("alpha", DEFAULT_ALPHA)
        if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not alpha >= 0:
            raise ValueError("settings.alpha must be a number >= 0")
        tokeniser = settings.get("tokeniser")
        if tokeniser is not None:
            from ...data.text import Tokeniser

            if not isinstance(tokeniser, dict):
                raise ValueError("settings.tokeniser must be an object")
            tokeniser = Tokeniser.from_dict(tokeniser).to_dict()
        return cls(vocabulary, float(alpha), tokeniser)

    def describe(self, params: MultinomialParams, columns: Sequence[str]) -> list[dict[str, Any]]:
        rows = []
        for j, words in enumerate(self.top_words(params)):
            rows.append(
                {
                    "component": j,
                    "weight": float(params.weights[j]),
                    "top_words": " ".join(w for w, _ in words),
                }
            )
        return rows


def _log(a: Array) -> Array:
    with np.errstate(divide="ignore"):
        return np.log(a)
