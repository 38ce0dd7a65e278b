"""Bias and skew of a synthetic dataset version against real data: topics, attribute groups, labels.

Pure computation over texts, optional unit-length embedding vectors (one row per
text, a zero row for an empty text) and optional labels; :func:`bias_section`
returns the metrics and their evidence as a :class:`~synthscope.scorecard.metrics.Section`.
Every comparison uses the total variation distance between two distributions over
the same categories, ``TVD(p, q) = ½ Σ_c |p_c − q_c|``: 0 when the shares agree,
1 when the two put their mass on different categories.

Topic skew
    k-means (:func:`synthscope.algorithms.clusters.kmeans`, fixed seed) over the vectors of the
    synthetic and the reference rows together, so both sides share one set of
    topics; ``k = min(12, max(2, round(sqrt(n_total / 4))))``. Per cluster ``c``:
    the synthetic share ``p_c`` (of the synthetic rows) and the reference share
    ``q_c``, and their ratio ``p_c / q_c`` (infinite when no reference row falls
    there). A cluster is *over-represented* when the ratio is at least
    :data:`OVER_RATIO` (2) and ``p_c`` at least :data:`MIN_SHARE` (5 %), and
    *under-represented* when the ratio is at most :data:`UNDER_RATIO` (½) and ``q_c``
    at least 5 %: a small cluster is not called skewed on a handful of rows. The
    metrics are ``TVD(p, q)`` and the number of skewed clusters.

    Each cluster is named by its three most distinctive words, a class-based TF-IDF
    (as BERTopic's c-TF-IDF): the rows of a cluster form one document, and a word
    ``w`` scores ``tf(w, c) · log(1 + A / f(w))`` with ``tf`` the word's share of the
    cluster's words, ``f(w)`` its count over all clusters and ``A`` the mean number
    of words per cluster; a word frequent everywhere scores low however frequent it
    is in ``c``. English stop words, numbers and words of one or two letters are
    skipped. Each cluster is shown with its synthetic and reference rows closest to
    its centre (Euclidean). Zero vectors (empty texts) are left out.

Attribute balance
    Configurable term lists per attribute and group (:data:`DEFAULT_ATTRIBUTES`:
    pronouns and common gendered nouns, world regions, language names). A row
    *mentions* a group when its normalised text contains one of the group's terms as
    a whole word or phrase (case-insensitive, word boundaries on both sides). Per
    attribute, each group's share is its mentioning rows over the sum of all groups'
    mentioning rows (a row mentioning two groups counts for both), on each side; the
    metric is the TVD between the synthetic and the reference shares. Without a
    reference, the TVD to the uniform distribution over the groups is reported
    instead (a crude baseline: real data need not be uniform, and the detail says so).

Label balance
    For labelled rows (classification data): the TVD between the synthetic and the
    reference label distributions.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from synthscope.algorithms.clusters import SEED, kmeans
from synthscope.core.text import normalize, tokenize
from synthscope.scorecard.metrics import Metric, Section
from synthscope.scorecard.quality import usable_rows

OVER_RATIO = 2.0
UNDER_RATIO = 0.5
MIN_SHARE = 0.05
EXAMPLES = 3
LABEL_WORDS = 3

Attributes = Mapping[str, Mapping[str, Sequence[str]]]

DEFAULT_ATTRIBUTES: dict[str, dict[str, list[str]]] = {
    "gender": {
        "female": ["she", "her", "hers", "herself", "woman", "women", "girl", "girls", "mother", "wife", "daughter",
                   "sister", "lady"],
        "male": ["he", "him", "his", "himself", "man", "men", "boy", "boys", "father", "husband", "son", "brother",
                 "gentleman"],
    },
    "region": {
        "africa": ["africa", "african"],
        "asia": ["asia", "asian"],
        "europe": ["europe", "european"],
        "north_america": ["north america", "north american"],
        "latin_america": ["latin america", "latin american", "south america", "south american"],
        "middle_east": ["middle east", "middle eastern"],
        "oceania": ["oceania", "australia", "australian"],
    },
    "language": {
        "english": ["english"], "spanish": ["spanish"], "chinese": ["chinese", "mandarin"], "hindi": ["hindi"],
        "arabic": ["arabic"], "french": ["french"], "portuguese": ["portuguese"],
    },
}
"""Attribute → group → terms. Short and neutral on purpose; pass your own to :func:`bias_section`."""

CLUSTER_COLUMNS = ["cluster", "label", "synthetic_n", "reference_n", "synthetic_share", "reference_share", "ratio",
                   "status"]
EXAMPLE_COLUMNS = ["cluster", "side", "record_id", "text"]
ATTRIBUTE_COLUMNS = ["attribute", "group", "synthetic_rows", "reference_rows", "synthetic_share", "reference_share"]
LABEL_COLUMNS = ["label", "synthetic_rows", "reference_rows", "synthetic_share", "reference_share"]


def tvd(p: Sequence[float] | np.ndarray, q: Sequence[float] | np.ndarray) -> float:
    """Total variation distance ``½ Σ |p − q|`` of two count or share vectors (each normalised here).

    NaN when either sums to zero.
    """
    p, q = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    if p.sum() <= 0 or q.sum() <= 0:
        return math.nan
    return float(0.5 * np.abs(p / p.sum() - q / q.sum()).sum())


# -- topic skew ---------------------------------------------------------------------------


def skew_clusters(n_total: int) -> int:
    """``k`` of the topic k-means: ``min(12, max(2, round(sqrt(n_total / 4))))``."""
    return min(12, max(2, round(math.sqrt(n_total / 4))))


def _content_word(word: str) -> bool:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return len(word) > 2 and not word.isdigit() and word not in ENGLISH_STOP_WORDS


def cluster_terms(texts: Sequence[str], labels: np.ndarray, k: int, words: int = LABEL_WORDS) -> list[str]:
    """Per cluster ``0..k-1``, its ``words`` most distinctive words by c-TF-IDF (module docstring), space-separated.

    Ties go to the alphabetically first word; a cluster with no content word gets ``""``.
    """
    counts = [Counter() for _ in range(k)]
    for text, c in zip(texts, labels):
        counts[int(c)].update(w for w in tokenize(text) if _content_word(w))
    overall: Counter[str] = Counter()
    for c in counts:
        overall.update(c)
    sizes = [sum(c.values()) for c in counts]
    mean_size = sum(sizes) / k if k else 0
    out = []
    for c, size in zip(counts, sizes):
        score = {w: (n / size) * math.log(1 + mean_size / overall[w]) for w, n in c.items()}
        out.append(" ".join(sorted(score, key=lambda w: (-score[w], w))[:words]))
    return out


def cluster_status(synthetic_share: float, reference_share: float, *, over_ratio: float = OVER_RATIO,
                   under_ratio: float = UNDER_RATIO, min_share: float = MIN_SHARE) -> str:
    """``"over"``, ``"under"`` or ``"balanced"`` for one cluster's two shares (module docstring)."""
    ratio = synthetic_share / reference_share if reference_share else math.inf
    if ratio >= over_ratio and synthetic_share >= min_share:
        return "over"
    if ratio <= under_ratio and reference_share >= min_share:
        return "under"
    return "balanced"


def cluster_skew(vectors: np.ndarray, reference_vectors: np.ndarray, texts: Sequence[str],
                 reference_texts: Sequence[str], record_ids: Sequence[str], reference_ids: Sequence[str], *,
                 over_ratio: float = OVER_RATIO, under_ratio: float = UNDER_RATIO, min_share: float = MIN_SHARE,
                 examples: int = EXAMPLES, seed: int = SEED) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Shared k-means topics of both sides: the ``clusters`` and ``cluster_examples`` tables.

    ``clusters`` (:data:`CLUSTER_COLUMNS`) has one row per non-empty cluster, over-
    represented first (ratio descending), then under-represented (ratio ascending),
    then balanced (synthetic share descending); ``cluster_examples``
    (:data:`EXAMPLE_COLUMNS`) up to ``examples`` rows per cluster and side, closest to
    the centre first. Zero vectors are left out; each side needs a non-zero row.
    """
    sides = []
    for name, v, side_texts, ids in (("synthetic", vectors, texts, record_ids),
                                     ("reference", reference_vectors, reference_texts, reference_ids)):
        rows = usable_rows(v)
        if len(rows) == 0:
            raise ValueError(f"the {name} side has no row with a non-zero embedding")
        sides.append((name, np.asarray(v, dtype=np.float64)[rows], [side_texts[i] for i in rows],
                      [ids[i] for i in rows]))
    both = np.vstack([sides[0][1], sides[1][1]])
    n_syn, n_ref = len(sides[0][1]), len(sides[1][1])
    k = min(skew_clusters(len(both)), len(both))
    labels, centres = kmeans(both, k, seed)
    names = cluster_terms(sides[0][2] + sides[1][2], labels, k)
    syn_n = np.bincount(labels[:n_syn], minlength=k)
    ref_n = np.bincount(labels[n_syn:], minlength=k)

    rows, shown = [], []
    for c in range(k):
        if syn_n[c] + ref_n[c] == 0:
            continue
        p, q = syn_n[c] / n_syn, ref_n[c] / n_ref
        rows.append({"cluster": c, "label": names[c], "synthetic_n": int(syn_n[c]), "reference_n": int(ref_n[c]),
                     "synthetic_share": float(p), "reference_share": float(q),
                     "ratio": float(p / q) if q else math.inf,
                     "status": cluster_status(p, q, over_ratio=over_ratio, under_ratio=under_ratio,
                                              min_share=min_share)})
        for s, (side, v, side_texts, ids) in enumerate(sides):
            members = np.flatnonzero(labels[s * n_syn:s * n_syn + len(v)] == c)
            distance = np.linalg.norm(v[members] - centres[c], axis=1)
            shown += [{"cluster": c, "side": side, "record_id": ids[i], "text": side_texts[i]}
                      for i in members[np.argsort(distance, kind="stable")][:examples]]
    clusters = pd.DataFrame(rows, columns=CLUSTER_COLUMNS)
    order = clusters["status"].map({"over": 0, "under": 1, "balanced": 2})
    key = np.where(clusters["status"] == "over", -clusters["ratio"],
                   np.where(clusters["status"] == "under", clusters["ratio"], -clusters["synthetic_share"]))
    clusters = clusters.assign(_order=order, _key=key).sort_values(["_order", "_key", "cluster"], kind="stable")
    return (clusters.drop(columns=["_order", "_key"]).reset_index(drop=True),
            pd.DataFrame(shown, columns=EXAMPLE_COLUMNS))


# -- attribute balance --------------------------------------------------------------------


def _group_pattern(terms: Sequence[str]) -> re.Pattern[str]:
    alternatives = sorted({normalize(t).strip() for t in terms if t.strip()}, key=len, reverse=True)
    return re.compile(r"(?<!\w)(?:" + "|".join(re.escape(a) for a in alternatives) + r")(?!\w)")


def attribute_counts(texts: Sequence[str], groups: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """Rows mentioning each group: any of its terms as a whole word or phrase, case-insensitive."""
    patterns = {group: _group_pattern(terms) for group, terms in groups.items()}
    normalised = [normalize(t or "") for t in texts]
    return {group: sum(1 for t in normalised if pattern.search(t)) for group, pattern in patterns.items()}


def attribute_balance(texts: Sequence[str], reference_texts: Sequence[str] | None,
                      attributes: Attributes = DEFAULT_ATTRIBUTES) -> tuple[pd.DataFrame, dict[str, float]]:
    """The ``attributes`` table (:data:`ATTRIBUTE_COLUMNS`) and per attribute its TVD.

    The TVD is against the reference's group shares, or against the uniform
    distribution when ``reference_texts`` is None; NaN when a side has no mention.
    Without a reference the reference columns are empty (NaN).
    """
    rows, distances = [], {}
    for attribute, groups in attributes.items():
        mine = attribute_counts(texts, groups)
        p = np.array([mine[g] for g in groups], dtype=float)
        if reference_texts is None:
            theirs, q = None, np.ones(len(groups))
        else:
            theirs = attribute_counts(reference_texts, groups)
            q = np.array([theirs[g] for g in groups], dtype=float)
        for g in groups:
            rows.append({"attribute": attribute, "group": g, "synthetic_rows": mine[g],
                         "reference_rows": math.nan if theirs is None else theirs[g],
                         "synthetic_share": mine[g] / p.sum() if p.sum() else math.nan,
                         "reference_share": math.nan if theirs is None or not q.sum() else theirs[g] / q.sum()})
        distances[attribute] = tvd(p, q)
    return pd.DataFrame(rows, columns=ATTRIBUTE_COLUMNS), distances


# -- label balance ------------------------------------------------------------------------


def label_balance(labels: Sequence[object], reference_labels: Sequence[object] | None
                  ) -> tuple[pd.DataFrame, float]:
    """The ``labels`` table (:data:`LABEL_COLUMNS`) and the TVD of the label distributions (NaN without reference).

    Labels are compared as strings; a missing label (None) is the label ``"(none)"``.
    """
    def names(values: Sequence[object]) -> list[str]:
        return ["(none)" if v is None else str(v) for v in values]

    mine = Counter(names(labels))
    theirs = Counter(names(reference_labels)) if reference_labels is not None else None
    every = sorted(set(mine) | set(theirs or ()))
    n, m = sum(mine.values()), sum((theirs or {}).values())
    table = pd.DataFrame({
        "label": every,
        "synthetic_rows": [mine[x] for x in every],
        "reference_rows": [theirs[x] if theirs is not None else math.nan for x in every],
        "synthetic_share": [mine[x] / n if n else math.nan for x in every],
        "reference_share": [theirs[x] / m if theirs is not None and m else math.nan for x in every],
    }, columns=LABEL_COLUMNS)
    if theirs is None:
        return table, math.nan
    return table, tvd([mine[x] for x in every], [theirs[x] for x in every])


# -- the section --------------------------------------------------------------------------


def _skew_metrics(section: Section, texts: list[str], ids: list[str], vectors: np.ndarray | None,
                  reference_texts: list[str] | None, reference_ids: list[str] | None,
                  reference_vectors: np.ndarray | None) -> None:
    why = ("no reference dataset" if reference_texts is None else "no embeddings" if vectors is None
           else "no embeddings of the reference rows" if reference_vectors is None else "")
    if not why and (len(usable_rows(vectors)) == 0 or len(usable_rows(reference_vectors)) == 0):
        why = "a side has no non-empty row"
    if why:
        section.notes.append(f"topic skew needs a reference dataset and embeddings of both sides ({why})")
        section.metrics += [Metric("bias.cluster_tvd", math.nan, "Topic skew", False, why, "clusters"),
                            Metric("bias.skewed_clusters", math.nan, "Skewed topics", False, why, "clusters")]
        return
    assert reference_texts is not None and reference_ids is not None and reference_vectors is not None
    clusters, examples = cluster_skew(vectors, reference_vectors, texts, reference_texts, ids, reference_ids)
    section.evidence["clusters"], section.evidence["cluster_examples"] = clusters, examples
    skewed = clusters[clusters["status"] != "balanced"]
    named = "; ".join(f"{r.status} '{r.label}' ({r.synthetic_share:.0%} vs {r.reference_share:.0%})"
                      for r in skewed.head(3).itertuples())
    n_syn, n_ref = int(clusters["synthetic_n"].sum()), int(clusters["reference_n"].sum())
    section.metrics += [
        Metric("bias.cluster_tvd", tvd(clusters["synthetic_share"], clusters["reference_share"]), "Topic skew",
               False, f"total variation distance of the shares of {n_syn} synthetic and {n_ref} reference rows over "
                      f"{len(clusters)} shared k-means clusters", "clusters"),
        Metric("bias.skewed_clusters", float(len(skewed)), "Skewed topics", False,
               f"{len(skewed)} of {len(clusters)} clusters over- or under-represented"
               + (f": {named}" if named else ""), "clusters"),
    ]


def _attribute_metrics(section: Section, texts: list[str], reference_texts: list[str] | None,
                       attributes: Attributes) -> None:
    table, distances = attribute_balance(texts, reference_texts, attributes)
    section.evidence["attributes"] = table
    against = "the reference" if reference_texts is not None else "a uniform distribution (no reference)"
    if reference_texts is None:
        section.notes.append("attribute balance compared with a uniform distribution: no reference dataset")
    per_attribute = []
    for attribute, distance in distances.items():
        rows = table[table["attribute"] == attribute]
        shares = ", ".join(f"{g} {s:.0%}" for g, s in zip(rows["group"], rows["synthetic_share"]) if s > 0)
        if math.isnan(distance):
            silent = [side for side in ("synthetic", "reference") if not rows[f"{side}_rows"].sum()]
            who = f"{silent[0]} " if len(silent) == 1 else ""
            detail = f"no {who}row mentions a {attribute} term"
        else:
            detail = (f"TVD against {against}; synthetic mentions: {shares} "
                      f"({int(rows['synthetic_rows'].sum())} mentions)")
        per_attribute.append(Metric(f"bias.attribute_tvd.{attribute}", distance,
                                    f"{attribute.replace('_', ' ').capitalize()} imbalance", False, detail,
                                    "attributes"))
    defined = {a: d for a, d in distances.items() if not math.isnan(d)}
    if defined:
        worst = max(defined, key=lambda a: defined[a])
        section.metrics.append(Metric("bias.attribute_tvd_max", defined[worst], "Attribute imbalance", False,
                                      f"worst attribute: {worst}, TVD {defined[worst]:.2f} against {against} "
                                      f"({len(defined)} of {len(distances)} attributes measured)", "attributes"))
    else:
        why = ("no attribute term mentioned on both sides" if reference_texts is not None
               else "no row mentions any attribute term")
        section.notes.append(f"attribute balance not measured: {why} ({', '.join(distances)})")
        section.metrics.append(Metric("bias.attribute_tvd_max", math.nan, "Attribute imbalance", False, why,
                                      "attributes"))
    section.metrics += per_attribute


def _label_metrics(section: Section, labels: Sequence[object] | None,
                   reference_labels: Sequence[object] | None) -> None:
    if labels is not None:
        table, distance = label_balance(labels, reference_labels)
        section.evidence["labels"] = table
    if labels is None or reference_labels is None:
        why = "no labels" if labels is None else "no labels on the reference rows"
        section.notes.append(f"label balance needs labels on the synthetic and the reference rows ({why})")
        section.metrics.append(Metric("bias.label_tvd", math.nan, "Label imbalance", False, why,
                                      "labels" if labels is not None else None))
        return
    section.metrics.append(Metric("bias.label_tvd", distance, "Label imbalance", False,
                                  f"TVD of the label distributions over {len(table)} labels "
                                  f"({len(labels)} synthetic, {len(reference_labels)} reference rows)", "labels"))


def _check(name: str, values: Sequence[object] | np.ndarray | None, rows: int | None) -> None:
    if values is not None and rows is not None and len(values) != rows:
        raise ValueError(f"{name} must have one entry per text ({rows}), has {len(values)}")


def bias_section(texts: Sequence[str], record_ids: Sequence[str], *, vectors: np.ndarray | None = None,
                 reference_texts: Sequence[str] | None = None, reference_ids: Sequence[str] | None = None,
                 reference_vectors: np.ndarray | None = None, labels: Sequence[object] | None = None,
                 reference_labels: Sequence[object] | None = None,
                 attributes: Attributes = DEFAULT_ATTRIBUTES) -> Section:
    """Topic skew, attribute balance and label balance of ``texts`` against the reference (module docstring).

    Metrics that need a reference, embeddings or labels that were not given are
    NaN, with the reason in their detail and in ``notes``.
    """
    texts, ids = [t or "" for t in texts], [str(i) for i in record_ids]
    ref_texts = None if reference_texts is None else [t or "" for t in reference_texts]
    ref_ids = None
    if ref_texts is not None:
        ref_ids = [str(i) for i in reference_ids] if reference_ids is not None else [str(i) for i in
                                                                                     range(len(ref_texts))]
    n_ref = None if ref_texts is None else len(ref_texts)
    _check("record_ids", ids, len(texts))
    _check("vectors", vectors, len(texts))
    _check("labels", labels, len(texts))
    _check("reference_ids", ref_ids, n_ref)
    _check("reference_vectors", reference_vectors, n_ref)
    _check("reference_labels", reference_labels, n_ref)
    section = Section("bias")
    _skew_metrics(section, texts, ids, vectors, ref_texts, ref_ids, reference_vectors)
    _attribute_metrics(section, texts, ref_texts, attributes)
    _label_metrics(section, labels, reference_labels)
    return section
