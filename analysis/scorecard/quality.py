"""Quality of a synthetic dataset version: duplicates, diversity, structure, fidelity and invalid rows.

Pure computation over a list of texts (one per record, :func:`synthscope.core.text.record_text`)
and, optionally, their embedding vectors: unit-length float32 rows, one per text, a
zero row for an empty text. :func:`quality_section` returns every metric with its
evidence as a :class:`~synthscope.scorecard.metrics.Section`; the functions it is made of are
public and tested one by one.

Duplicates
    *Exact*: texts equal after the shared normalisation (:func:`synthscope.core.text.normalize`)
    with runs of whitespace collapsed to one space. Blank texts are not duplicates
    (they are invalid rows).

    *Near*: the near-duplicate stage's shingles (:mod:`synthscope.contamination.minhash`):
    each text's set ``S`` of word 5-gram hashes, compared by the Jaccard index
    ``J(A, B) = |A ∩ B| / |A ∪ B|``. Texts with identical shingle sets (``J = 1``)
    are joined directly; one representative of each distinct set is signed with
    MinHash (``num_perm = 128``) and cut into LSH bands (``b`` bands of ``r`` rows,
    chosen by datasketch for an LSH threshold 0.3 below the flagging threshold), so
    that a pair becomes a candidate with probability ``1 - (1 - J**r)**b``: at the
    default threshold 0.8 the bands are tuned for 0.5 (``b = 25, r = 5``) and a pair
    at ``J = 0.8`` is proposed with probability 0.99995. Every candidate is then
    **confirmed by its exact Jaccard** ``>= threshold``. A bucket of more than
    :data:`synthscope.algorithms.lsh.MAX_BUCKET` rows (one template filled many times) is not expanded into all
    its pairs: each member is confirmed against the bucket's first member and its
    predecessor only. Confirmed pairs and exact copies are joined into clusters by
    union-find, so near-duplicate clusters contain the exact ones. Texts of fewer
    than 5 words have no shingles and are compared exactly only.

    A duplicate *rate* is the share of rows that are not the first of their
    cluster: ``sum(size - 1) / n``, the rows a deduplication would drop.

Diversity
    distinct-n (Li et al. 2016) = distinct word n-grams / all word n-grams of the
    whole dataset (n-grams do not cross texts; tokens of :func:`synthscope.core.text.tokenize`,
    counted through their 64-bit hashes). Mean pairwise distance = the mean of
    ``1 - cos(x_i, x_j)`` over all pairs ``i != j`` of non-zero vectors. It is
    exact for any ``n`` in ``O(n d)``, with no sampling: for unit vectors
    ``cos = x_i · x_j`` and ``sum_{i != j} x_i · x_j = |sum_i x_i|**2 - n``, so the
    mean cosine is ``(|s|**2 - n) / (n (n - 1))``. Cluster entropy: k-means on the
    vectors (scikit-learn, fixed seed, ``k = min(20, max(2, round(sqrt(n / 2))))``,
    fitted on at most :data:`synthscope.algorithms.clusters.KMEANS_SAMPLE` rows), then the Shannon entropy of the
    cluster sizes divided by ``log k``: 1 when the rows spread evenly over ``k``
    clusters, 0 when they all sit in one.

Structure against a reference (real data)
    Three histograms per dataset: sentences per record, words per sentence and
    characters per word. A sentence is a piece of text between sentence ends
    (``.``, ``!``, ``?``, ``…`` followed by white space) or line breaks, with at
    least one word. The synthetic and the reference histogram share their bins:
    integers ``0 .. cap`` with ``cap`` the 99th percentile of the union, and one
    overflow bin ``>cap``. They are compared by the Jensen-Shannon divergence in bits,
    ``JSD(P, Q) = ½ KL(P ‖ M) + ½ KL(Q ‖ M)`` with ``M = ½ (P + Q)`` and ``log2``: 0
    for equal histograms, 1 for disjoint ones. (``scipy.spatial.distance.jensenshannon``
    returns the Jensen-Shannon *distance*, the divergence's square root; this module
    reports the divergence, equal to that distance squared.)

Fidelity: k-NN precision and recall (Kynkäänniemi et al. 2019, "Improved Precision and
Recall Metric for Assessing Generative Models")
    Each point ``x`` of a set ``X`` has a ball ``B(x, r_k(x))`` whose radius is the
    Euclidean distance to its ``k``-th nearest neighbour in ``X`` itself (``k = 5``,
    the point excluded). Precision = the share of synthetic points inside the union
    of the reference balls (how many synthetic rows look real); recall = the share
    of reference points inside the union of the synthetic balls (how much of the real
    variety the synthetic rows cover). Computed exactly with faiss and bounded
    memory: ``|q - c| <= r_c`` for some centre ``c`` if and only if the nearest
    neighbour of ``q' = (q, 0)`` among the lifted centres ``c' = (c, sqrt(R² - r_c²))``
    (``R = max r_c``) lies within ``R``, because ``|q' - c'|² = |q - c|² + R² - r_c²``;
    one exact 1-NN search per side answers it. Zero vectors (empty texts) are left
    out of every vector metric.

Invalid rows
    *Empty*: blank after stripping. *Template residue*: an unfilled slot
    (``{customer_name}``, ``{{ var }}``, ``<PLACEHOLDER>``, ``[Your Name]``), a chat
    template token (``<|im_start|>``, ``[INST]``, ``<<SYS>>``) or an echoed
    instruction (:data:`ECHO_PHRASES`: "As an AI language model", "Here is the
    rewritten", "Sure! Here", ...); code (fenced blocks and inline backticks) is
    ignored when looking for slots, and so are braces right after a word character,
    ``\\``, ``$``, ``^`` or ``}`` (LaTeX ``\\frac{a}{b}``, ``x^{2}``, template
    literals ``${x}``). *Truncated*: an odd number of code fences, more opening than
    closing brackets of one kind, ending with ``...`` or ``…``, ending with a comma
    or a dangling conjunction or article (:data:`DANGLING_WORDS`, texts of at least 3
    words), or a long text (:data:`LONG_TEXT` characters, a last line of 8 or more
    words, earlier sentences ended properly) whose last character is a letter: it
    stopped mid-sentence. A word cut in half cannot be told from a whole one, so
    that is all "ends mid-word" can mean here. Every reason found is reported.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from synthscope.algorithms.clusters import duplicate_clusters, kmeans
from synthscope.algorithms.lsh import candidate_pairs, lsh_params
from synthscope.algorithms.minhash import Shingles, jaccard, shingle, shingle_windows, signatures
from synthscope.core.text import normalize, tokenize
from synthscope.scorecard.metrics import Metric, Section, check_vectors

NEAR_DUP_THRESHOLD = 0.8
SHINGLE_WORDS = 5
NUM_PERM = 128
MINHASH_SEED = 1
LSH_BELOW = 0.3  # the LSH bands are tuned this far below the flagging threshold (see the module docstring)
K_NEIGHBOURS = 5
LONG_TEXT = 200

RESIDUE_PATTERNS: dict[str, str] = {
    "unfilled {{ var }}": r"\{\{\s*[A-Za-z_][\w.]*\s*\}\}",
    "unfilled {slot}": r"(?<![\w\\}^${])\{[A-Za-z_][A-Za-z0-9_]+\}(?!\})",
    "unfilled <SLOT>": r"<[A-Z][A-Z0-9_]{2,}>",
    "unfilled [slot]": r"\[(?i:your|insert|enter)\b[^\]\n]{0,40}\]|\[(?:PLACEHOLDER|NAME|DATE|COMPANY)\]",
    "chat-template token": r"<\|[A-Za-z0-9_]+\|>|\[/?INST\]|<</?SYS>>",
}
"""Name → regular expression (case-sensitive unless it says ``(?i:...)``) of template residue."""
ECHO_PHRASES: tuple[str, ...] = (
    "as an ai language model", "as a large language model", "as an ai assistant", "here is the rewritten",
    "here's the rewritten", "here is a rewritten", "here is the paraphrased", "here's the paraphrased",
    "here is the generated", "here's the generated", "sure! here", "sure, here is", "sure, here's",
    "certainly! here", "certainly, here is",
)
"""Echoed instructions, matched case-insensitively from a word start anywhere in the text."""
DANGLING_WORDS = frozenset({"and", "or", "but", "nor", "because", "although", "whereas", "the", "a", "an"})
BRACKETS = ("()", "[]", "{}")

_CODE = re.compile(r"```.*?(?:```|\Z)|`[^`\n]*`", re.DOTALL)
_SENTENCE_BREAK = re.compile(r"(?<=[.!?…])\s+|\n+")
_TERMINATOR = re.compile(r"[.!?…]\s")
_LAST_WORD = re.compile(r"\w+\Z")


# -- duplicates --------------------------------------------------------------------------


def removable(clusters: Sequence[Sequence[int]]) -> int:
    """Rows that are not the first of their cluster: what a deduplication drops."""
    return sum(len(c) - 1 for c in clusters)


def exact_key(text: str) -> str:
    """What exact duplicates share: the normalised text with white space collapsed."""
    return " ".join(normalize(text).split())


def exact_duplicates(texts: Sequence[str]) -> list[list[int]]:
    """Clusters of rows equal after :func:`exact_key`; blank rows are never duplicates."""
    first: dict[str, int] = {}
    pairs = []
    for i, text in enumerate(texts):
        key = exact_key(text)
        if key:
            pairs.append((first.setdefault(key, i), i))
    return duplicate_clusters(len(texts), [(a, b) for a, b in pairs if a != b])


def lsh_threshold(threshold: float) -> float:
    """Where the LSH bands turn steep for a flagging ``threshold``: :data:`LSH_BELOW` lower, within [0.05, 0.95]."""
    return min(0.95, max(0.05, threshold - LSH_BELOW))


def near_duplicate_pairs(texts: Sequence[str], threshold: float = NEAR_DUP_THRESHOLD, *,
                         shingle_words: int = SHINGLE_WORDS, num_perm: int = NUM_PERM,
                         seed: int = MINHASH_SEED) -> list[tuple[int, int, float]]:
    """Pairs ``(i, j, jaccard)``, ``i < j``, of word-shingle Jaccard ``>= threshold`` (module docstring).

    Rows with identical shingle sets are paired with the first of them at Jaccard
    1; the distinct sets go through MinHash LSH and exact confirmation.
    """
    return _near_pairs(texts, threshold, shingle_words, num_perm, seed)[0]


def _near_pairs(texts: Sequence[str], threshold: float, shingle_words: int, num_perm: int, seed: int
                ) -> tuple[list[tuple[int, int, float]], Shingles]:
    sets = shingle(list(texts), shingle_words)
    sizes = sets.sizes()
    pairs: list[tuple[int, int, float]] = []
    first: dict[bytes, int] = {}
    reps: list[int] = []
    for i in np.flatnonzero(sizes > 0):
        i = int(i)
        j = first.setdefault(sets.of(i).tobytes(), i)
        if j == i:
            reps.append(i)
        else:
            pairs.append((j, i, 1.0))
    if len(reps) > 1:
        index = np.asarray(reps, dtype=np.int64)
        sigs = signatures(sets.subset(index), num_perm, seed)
        for a, b in sorted(candidate_pairs(sigs, *lsh_params(lsh_threshold(threshold), num_perm))):
            i, j = int(index[a]), int(index[b])
            score = jaccard(sets.of(i), sets.of(j))
            if score >= threshold:
                pairs.append((i, j, score))
    return sorted(pairs), sets


# -- diversity ----------------------------------------------------------------------------


def ngram_counts(texts: Sequence[str], n: int) -> tuple[int, int]:
    """``(distinct, total)`` word n-grams of the dataset; an n-gram never spans two texts."""
    windows = shingle_windows(list(texts), n).values
    return len(np.unique(windows)), len(windows)


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct word n-grams / all word n-grams over the dataset; NaN when there is none."""
    distinct, total = ngram_counts(texts, n)
    return distinct / total if total else math.nan


def usable_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows of ``vectors`` that are not zero (a zero row stands for an empty text)."""
    return np.flatnonzero(np.abs(np.asarray(vectors)).sum(axis=1) > 0)


def _unit(vectors: np.ndarray) -> np.ndarray:
    v = np.asarray(vectors, dtype=np.float64)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def mean_pairwise_distance(vectors: np.ndarray) -> float:
    """Mean ``1 - cos`` over all pairs of distinct rows, exactly, in ``O(n d)``; NaN below 2 rows.

    Zero rows must be left out by the caller (:func:`usable_rows`); the rest are
    re-normalised, then ``mean cos = (|sum x|**2 - n) / (n (n - 1))``.
    """
    n = len(vectors)
    if n < 2:
        return math.nan
    total = _unit(vectors).sum(axis=0)
    return float(min(2.0, max(0.0, 1 - (total @ total - n) / (n * (n - 1)))))


def entropy_clusters(n: int) -> int:
    """``k`` of the diversity k-means: ``min(20, max(2, round(sqrt(n / 2))))``."""
    return min(20, max(2, round(math.sqrt(n / 2))))


def cluster_entropy(labels: np.ndarray, k: int) -> float:
    """Shannon entropy of the cluster sizes over ``log k``: 1 for ``k`` equal clusters, 0 for one; NaN for no rows."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=k).astype(float)
    if counts.sum() == 0 or k < 2:
        return math.nan
    p = counts[counts > 0] / counts.sum()
    return float(max(0.0, -(p * np.log(p)).sum() / math.log(k)))


# -- structure ----------------------------------------------------------------------------

STRUCTURE_FEATURES = ("sentences_per_record", "words_per_sentence", "chars_per_word")


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``: pieces between sentence ends or line breaks that hold at least one word."""
    return [s for s in _SENTENCE_BREAK.split(text) if tokenize(s)]


def structure_features(texts: Sequence[str]) -> dict[str, list[int]]:
    """Per dataset, the values of the three structure features (:data:`STRUCTURE_FEATURES`)."""
    out: dict[str, list[int]] = {name: [] for name in STRUCTURE_FEATURES}
    for text in texts:
        sentences = split_sentences(text)
        out["sentences_per_record"].append(len(sentences))
        for sentence in sentences:
            words = tokenize(sentence)
            out["words_per_sentence"].append(len(words))
            out["chars_per_word"].extend(len(w) for w in words)
    return out


def shared_histograms(a: Sequence[int], b: Sequence[int], quantile: float = 99
                      ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Shares of ``a`` and ``b`` on shared bins ``0 .. cap`` and ``>cap`` (cap: ``quantile`` of the union).

    An empty side gets all-zero shares. Returns ``(p, q, bin_names)``.
    """
    x, y = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    both = np.concatenate([x, y])
    cap = int(math.ceil(np.percentile(both, quantile))) if len(both) else 0

    def shares(values: np.ndarray) -> np.ndarray:
        counts = np.bincount(np.clip(values, 0, cap + 1), minlength=cap + 2).astype(float)
        return counts / counts.sum() if counts.sum() else counts

    return shares(x), shares(y), [str(i) for i in range(cap + 1)] + [f">{cap}"]


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence in bits (0..1) of two histograms on the same bins; NaN if one is empty.

    The divergence, not scipy's ``jensenshannon`` distance (its square root).
    """
    p, q = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    if p.sum() <= 0 or q.sum() <= 0:
        return math.nan
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2

    def kl(x: np.ndarray) -> float:
        keep = x > 0
        return float((x[keep] * np.log2(x[keep] / m[keep])).sum())

    return float(min(1.0, max(0.0, (kl(p) + kl(q)) / 2)))


def structure_divergence(texts: Sequence[str], reference_texts: Sequence[str]
                         ) -> tuple[dict[str, float], pd.DataFrame]:
    """JSD per structure feature, and the evidence table (feature, bin, synthetic_share, reference_share).

    Bins empty on both sides are left out of the table (they change no divergence).
    """
    mine, theirs = structure_features(texts), structure_features(reference_texts)
    jsds: dict[str, float] = {}
    rows = []
    for feature in STRUCTURE_FEATURES:
        p, q, bins = shared_histograms(mine[feature], theirs[feature])
        jsds[feature] = js_divergence(p, q)
        rows += [{"feature": feature, "bin": b, "synthetic_share": float(x), "reference_share": float(y)}
                 for b, x, y in zip(bins, p, q) if x > 0 or y > 0]
    return jsds, pd.DataFrame(rows, columns=["feature", "bin", "synthetic_share", "reference_share"])


# -- fidelity -----------------------------------------------------------------------------


def knn_radii(points: np.ndarray, k: int = K_NEIGHBOURS) -> np.ndarray:
    """Euclidean distance of every point to its ``k``-th nearest neighbour in ``points``, itself excluded.

    Exact search (faiss ``IndexFlatL2``); the ``k + 1``-th smallest distance
    counts the point itself once, whatever its duplicates.
    """
    import faiss

    x = np.ascontiguousarray(points, dtype=np.float32)
    index = faiss.IndexFlatL2(x.shape[1])
    index.add(x)
    d2, _ = index.search(x, k + 1)
    return np.sqrt(np.maximum(d2[:, k].astype(np.float64), 0))


def inside_balls(queries: np.ndarray, centres: np.ndarray, radii: np.ndarray, tolerance: float = 1e-5) -> np.ndarray:
    """Whether each query lies in at least one ball ``B(centre, radius)`` (the lifting trick of the docstring).

    ``tolerance`` is relative to ``R²`` and absorbs float32 rounding at the boundary.
    """
    import faiss

    radii = np.asarray(radii, dtype=np.float64)
    big = float(radii.max()) if len(radii) else 0.0
    lift = np.sqrt(np.maximum(big**2 - radii**2, 0))
    c = np.ascontiguousarray(np.hstack([centres, lift[:, None]]), dtype=np.float32)
    q = np.ascontiguousarray(np.hstack([queries, np.zeros((len(queries), 1))]), dtype=np.float32)
    index = faiss.IndexFlatL2(c.shape[1])
    index.add(c)
    d2, _ = index.search(q, 1)
    return d2[:, 0].astype(np.float64) <= big**2 * (1 + tolerance) + 1e-12


def knn_precision_recall(synthetic: np.ndarray, reference: np.ndarray, k: int = K_NEIGHBOURS) -> tuple[float, float]:
    """Kynkäänniemi et al.'s ``(precision, recall)`` of ``synthetic`` against ``reference``; NaN with ``<= k`` rows.

    Both sets are centred on the mean of their union first (distances do not
    change; float32 rounding does, for the better).
    """
    s, r = np.asarray(synthetic, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    if len(s) <= k or len(r) <= k:
        return math.nan, math.nan
    centre = np.vstack([s, r]).mean(axis=0)
    s, r = s - centre, r - centre
    precision = float(inside_balls(s, r, knn_radii(r, k)).mean())
    recall = float(inside_balls(r, s, knn_radii(s, k)).mean())
    return precision, recall


# -- invalid rows -------------------------------------------------------------------------


def _compiled(patterns: Mapping[str, str]) -> list[tuple[str, re.Pattern[str]]]:
    return [(name, re.compile(p)) for name, p in patterns.items()]


_RESIDUE = _compiled(RESIDUE_PATTERNS)


def _residue(text: str, patterns: list[tuple[str, re.Pattern[str]]], phrases: Sequence[str]) -> list[str]:
    prose = _CODE.sub(" ", text)
    out = [f"template residue: {name} {found.group(0)!r}" for name, pattern in patterns
           if (found := pattern.search(prose))]
    folded = normalize(text).replace("’", "'")
    out += [f"template residue: echoed instruction {p!r}" for p in phrases
            if re.search(r"(?<!\w)" + re.escape(normalize(p)), folded)]
    return out


def _truncation(text: str) -> list[str]:
    out = []
    if text.count("```") % 2:
        out.append("truncated: unclosed code fence")
    prose = _CODE.sub(" ", text)
    out += [f"truncated: unclosed {pair[0]!r}" for pair in BRACKETS if prose.count(pair[0]) > prose.count(pair[1])]
    words = tokenize(text)
    last = _LAST_WORD.search(text)  # as written: a capitalised "A" at the end is a name, not an article
    if text.endswith(("...", "…")):
        out.append("truncated: ends with an ellipsis")
    elif len(words) >= 3 and text.endswith(","):
        out.append("truncated: ends with a dangling comma")
    elif len(words) >= 3 and last is not None and last.group(0) in DANGLING_WORDS:
        out.append(f"truncated: ends with a dangling {last.group(0)!r}")
    elif (len(text) >= LONG_TEXT and text[-1].isalpha() and len(tokenize(text.rsplit("\n", 1)[-1])) >= 8
          and _TERMINATOR.search(text)):
        out.append("truncated: stops mid-sentence")
    return out


def invalid_reasons(text: str, *, residue: Mapping[str, str] | None = None,
                    phrases: Sequence[str] = ECHO_PHRASES) -> list[str]:
    """Every reason ``text`` is invalid (empty; template residue; truncated), or ``[]``.

    ``residue`` replaces :data:`RESIDUE_PATTERNS` and ``phrases`` :data:`ECHO_PHRASES`.
    """
    stripped = text.strip()
    if not stripped:
        return ["empty"]
    patterns = _RESIDUE if residue is None else _compiled(residue)
    return _residue(stripped, patterns, phrases) + _truncation(stripped)


def invalid_reason(text: str, *, residue: Mapping[str, str] | None = None,
                   phrases: Sequence[str] = ECHO_PHRASES) -> str | None:
    """:func:`invalid_reasons` joined by ``"; "``, or None for a valid row."""
    reasons = invalid_reasons(text, residue=residue, phrases=phrases)
    return "; ".join(reasons) if reasons else None


# -- the section --------------------------------------------------------------------------


def _nan(key: str, label: str, higher: bool, why: str, evidence: str | None = None) -> Metric:
    return Metric(key, math.nan, label, higher, why, evidence)


def _duplicate_table(texts: Sequence[str], ids: Sequence[str], exact: list[list[int]], near: list[list[int]],
                     sets: Shingles) -> pd.DataFrame:
    rows = []
    for kind, clusters in (("exact", exact), ("near", near)):
        for c, members in enumerate(sorted(clusters, key=lambda g: (-len(g), g[0]))):
            head = members[0]
            for i in members:
                if kind == "exact" or i == head:
                    score = 1.0
                elif len(sets.of(i)) and len(sets.of(head)):
                    score = jaccard(sets.of(head), sets.of(i))
                else:
                    score = 1.0 if exact_key(texts[i]) == exact_key(texts[head]) else math.nan
                rows.append({"cluster": c, "kind": kind, "record_id": ids[i], "text": texts[i],
                             "size": len(members), "jaccard": score})
    return pd.DataFrame(rows, columns=["cluster", "kind", "record_id", "text", "size", "jaccard"])


def _duplicate_metrics(section: Section, texts: list[str], ids: list[str], threshold: float) -> None:
    n = len(texts)
    exact = exact_duplicates(texts)
    pairs, sets = _near_pairs(texts, threshold, SHINGLE_WORDS, NUM_PERM, MINHASH_SEED)
    exact_pairs = [(g[0], i) for g in exact for i in g[1:]]
    near = duplicate_clusters(n, exact_pairs + [(a, b) for a, b, _ in pairs])
    section.evidence["duplicate_clusters"] = _duplicate_table(texts, ids, exact, near, sets)
    section.metrics += [
        Metric("quality.exact_duplicate_rate", removable(exact) / n if n else math.nan, "Exact duplicates", False,
               f"{removable(exact)} of {n} rows repeat an earlier row, in {len(exact)} clusters", "duplicate_clusters"),
        Metric("quality.near_duplicate_rate", removable(near) / n if n else math.nan, "Near duplicates", False,
               f"{removable(near)} of {n} rows in {len(near)} clusters at word-{SHINGLE_WORDS}-gram Jaccard >= "
               f"{threshold:g} (exact copies included)", "duplicate_clusters"),
    ]


def _diversity_metrics(section: Section, texts: list[str], vectors: np.ndarray | None) -> None:
    for n, what in ((1, "words"), (2, "word pairs")):
        distinct, total = ngram_counts(texts, n)
        section.metrics.append(Metric(f"quality.distinct_{n}", distinct / total if total else math.nan,
                                      f"Distinct-{n}", True, f"{distinct:,} distinct {what} of {total:,}"))
    if vectors is None:
        why = "no embeddings"
        section.notes.append("mean pairwise distance and cluster entropy need embeddings (not computed)")
        section.metrics += [_nan("quality.mean_pairwise_distance", "Mean pairwise distance", True, why),
                            _nan("quality.cluster_entropy", "Cluster entropy", True, why)]
        return
    rows = usable_rows(vectors)
    v = np.asarray(vectors)[rows]
    m = len(v)
    left_out = f"; {len(vectors) - m} empty rows left out" if m < len(vectors) else ""
    if m < 2:
        why = f"needs at least 2 rows with a non-zero embedding, has {m}"
        section.notes.append(f"mean pairwise distance and cluster entropy: {why}")
        section.metrics += [_nan("quality.mean_pairwise_distance", "Mean pairwise distance", True, why),
                            _nan("quality.cluster_entropy", "Cluster entropy", True, why)]
        return
    k = entropy_clusters(m)
    labels, _ = kmeans(v, k)
    sizes = np.bincount(labels, minlength=k)
    section.metrics += [
        Metric("quality.mean_pairwise_distance", mean_pairwise_distance(v), "Mean pairwise distance", True,
               f"mean 1 − cosine over all {m * (m - 1) // 2:,} pairs of {m} rows (exact){left_out}"),
        Metric("quality.cluster_entropy", cluster_entropy(labels, k), "Cluster entropy", True,
               f"{m} rows over k = {k} k-means clusters (1 = even); largest cluster {sizes.max() / m:.0%} of rows"
               f"{left_out}"),
    ]


def _structure_metrics(section: Section, texts: list[str], reference_texts: Sequence[str] | None) -> None:
    labels = {"structure_jsd": "Structure divergence", "jsd_sentences_per_record": "JSD sentences/record",
              "jsd_words_per_sentence": "JSD words/sentence", "jsd_chars_per_word": "JSD characters/word"}
    if reference_texts is None:
        why = "no reference dataset"
        section.notes.append("structure divergence needs a reference dataset of real data (not computed)")
        section.metrics += [_nan(f"quality.{key}", label, False, why) for key, label in labels.items()]
        return
    jsds, table = structure_divergence(texts, list(reference_texts))
    section.evidence["structure"] = table
    defined = [v for v in jsds.values() if not math.isnan(v)]
    mean = float(np.mean(defined)) if defined else math.nan
    if len(defined) < len(jsds):
        section.notes.append("structure divergence: some features have no values on one side ("
                             + ", ".join(f for f, v in jsds.items() if math.isnan(v)) + ")")
    section.metrics.append(Metric(
        "quality.structure_jsd", mean, "Structure divergence", False,
        "mean Jensen-Shannon divergence (bits) of sentences/record, words/sentence and characters/word: "
        + ", ".join(f"{v:.3f}" for v in jsds.values()) + f" ({len(texts)} vs {len(reference_texts)} rows)",
        "structure"))
    units = {"sentences_per_record": "records", "words_per_sentence": "sentences", "chars_per_word": "words"}
    for feature, value in jsds.items():
        detail = (f"Jensen-Shannon divergence (bits) of the {feature.replace('_', ' ')} histograms"
                  if not math.isnan(value) else f"no {units[feature]} on one side")
        section.metrics.append(Metric(f"quality.jsd_{feature}", value, labels[f"jsd_{feature}"], False, detail,
                                      "structure"))


def _fidelity_metrics(section: Section, vectors: np.ndarray | None, reference_vectors: np.ndarray | None,
                      has_reference: bool, k: int) -> None:
    why = ("no embeddings" if vectors is None else "" if reference_vectors is not None
           else "no embeddings of the reference rows" if has_reference else "no reference dataset")
    if why:
        section.notes.append(f"k-NN precision and recall need embeddings of synthetic and reference rows ({why})")
        section.metrics += [_nan("quality.knn_precision", "k-NN precision", True, why),
                            _nan("quality.knn_recall", "k-NN recall", True, why)]
        return
    s = np.asarray(vectors)[usable_rows(vectors)]
    r = np.asarray(reference_vectors)[usable_rows(reference_vectors)]
    if len(s) <= k or len(r) <= k:
        why = f"needs more than k = {k} non-empty rows on each side ({len(s)} synthetic, {len(r)} reference)"
        section.notes.append(f"k-NN precision and recall: {why}")
        section.metrics += [_nan("quality.knn_precision", "k-NN precision", True, why),
                            _nan("quality.knn_recall", "k-NN recall", True, why)]
        return
    precision, recall = knn_precision_recall(s, r, k)
    section.metrics += [
        Metric("quality.knn_precision", precision, "k-NN precision", True,
               f"{round(precision * len(s))} of {len(s)} synthetic rows inside a reference row's {k}-NN ball "
               "(realism)"),
        Metric("quality.knn_recall", recall, "k-NN recall", True,
               f"{round(recall * len(r))} of {len(r)} reference rows inside a synthetic row's {k}-NN ball "
               "(coverage)"),
    ]


def _invalid_metrics(section: Section, texts: list[str], ids: list[str]) -> None:
    n = len(texts)
    rows = [(ids[i], reason, text) for i, text in enumerate(texts) if (reason := invalid_reason(text))]
    table = pd.DataFrame(rows, columns=["record_id", "reason", "text"])
    section.evidence["invalid_rows"] = table
    found = [{part.split(":", 1)[0] for part in reason.split("; ")} for _, reason, _ in rows]
    kinds = {kind: sum(kind in f for f in found) for kind in ("empty", "template residue", "truncated")}
    breakdown = ", ".join(f"{count} {kind}" for kind, count in kinds.items() if count)
    section.metrics.append(Metric("quality.invalid_rate", len(rows) / n if n else math.nan, "Invalid rows", False,
                                  f"{len(rows)} of {n} rows invalid" + (f": {breakdown}" if breakdown else ""),
                                  "invalid_rows"))


def quality_section(texts: Sequence[str], record_ids: Sequence[str], *, vectors: np.ndarray | None = None,
                    reference_texts: Sequence[str] | None = None, reference_vectors: np.ndarray | None = None,
                    near_dup_threshold: float = NEAR_DUP_THRESHOLD, k: int = K_NEIGHBOURS) -> Section:
    """Every quality metric of ``texts`` (see the module docstring), with its evidence.

    ``vectors`` / ``reference_vectors``: unit-length embeddings, one row per text
    (zero rows for empty texts). Metrics that need a reference or embeddings that
    were not given are NaN, with the reason in their detail and in ``notes``.
    """
    texts, ids = [t or "" for t in texts], [str(i) for i in record_ids]
    if len(ids) != len(texts):
        raise ValueError(f"{len(texts)} texts but {len(ids)} record ids")
    check_vectors("vectors", vectors, len(texts))
    check_vectors("reference_vectors", reference_vectors, None if reference_texts is None else len(reference_texts))
    section = Section("quality")
    _duplicate_metrics(section, texts, ids, near_dup_threshold)
    _diversity_metrics(section, texts, vectors)
    _structure_metrics(section, texts, None if reference_texts is None else [t or "" for t in reference_texts])
    _fidelity_metrics(section, vectors, reference_vectors, reference_texts is not None, k)
    _invalid_metrics(section, texts, ids)
    return section
