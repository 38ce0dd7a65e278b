"""Privacy of a synthetic dataset version: PII, PII replayed from the private source, copies and membership.

Pure computation over lists of texts (one per record, :func:`synthscope.core.text.record_text`)
and, optionally, their embeddings: unit-length float32 rows, one per text, a zero
row for an empty text. :func:`privacy_section` returns every metric with its
evidence as a :class:`~synthscope.scorecard.metrics.Section`; the functions it is made of are
public and tested one by one. Three datasets can take part: the *synthetic* rows
under test, the private *source* the generator saw (its training rows) and a
*holdout*: real rows of the same population that the generator did not see.

The parts, each a module of its own with its maths: :mod:`.pii` (PII detection and
replay), :mod:`.distances` (DCR and verbatim spans) and :mod:`.attacks` (the holdout
baseline and membership inference).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from synthscope.scorecard.metrics import Metric, Section, check_vectors
from synthscope.scorecard.privacy.attacks import dcr_protection, distance_attack, membership_inference
from synthscope.scorecard.privacy.distances import (
    SPAN_SEED,
    char_grams,
    jaccard_distance,
    longest_spans,
    nearest_chars,
    nearest_embedding,
    nearest_gram_sets,
)
from synthscope.scorecard.privacy.pii import (
    ENTITIES,
    find_pii,
    find_pii_in,
    iban_ok,
    luhn_ok,
    mask,
    pii_replay,
    presidio_available,
    redact,
    replayed_values,
)

__all__ = [
    "ENTITIES", "LONG_SPAN_WORDS", "NEAR_COPY_CHARS", "NEAR_COPY_EMBEDDING", "char_grams", "dcr_protection",
    "distance_attack", "find_pii", "find_pii_in", "iban_ok", "jaccard_distance", "longest_spans", "luhn_ok", "mask",
    "membership_inference", "nearest_chars", "nearest_embedding", "nearest_gram_sets", "pii_replay",
    "presidio_available", "privacy_section", "redact", "replayed_values",
]

NEAR_COPY_EMBEDDING = 0.05  # embedding DCR at or below this (cosine >= 0.95) is a near-copy
NEAR_COPY_CHARS = 0.2  # character-5-gram Jaccard distance at or below this is a near-copy
LONG_SPAN_WORDS = 20  # a verbatim span this long counts as a long copied span

# -- the section ------------------------------------------------------------------------------

_NAN = math.nan
_LABELS = {
    "privacy.pii_rows_share": ("Rows with PII", False),
    "privacy.pii_replay_rate": ("PII replay", False),
    "privacy.near_copy_share": ("Near-copies", False),
    "privacy.longest_copied_span": ("Longest copied span", False),
    "privacy.long_span_share": ("Rows with long copied spans", False),
    "privacy.dcr_protection": ("DCR protection", True),
    "privacy.mia_auroc": ("Membership inference AUROC", False),
}


def _metric(key: str, value: float, detail: str, evidence: str | None = None) -> Metric:
    label, higher_is_better = _LABELS[key]
    return Metric(key, float(value), label, higher_is_better, detail, evidence)


@dataclass
class _Data:
    """One dataset's texts, record ids and optional vectors; its character 5-gram sets computed once."""

    texts: list[str]
    ids: list[str]
    vectors: np.ndarray | None
    _grams: list[set[str]] | None = None

    @classmethod
    def of(cls, name: str, texts: Sequence[str] | None, ids: Sequence[str] | None,
           vectors: np.ndarray | None) -> _Data | None:
        """None when there are no texts; record ids default to row numbers."""
        if texts is None or (not len(texts) and name != "synthetic"):
            return None
        texts = [t or "" for t in texts]
        ids = [str(i) for i in range(len(texts))] if ids is None else [str(i) for i in ids]
        if len(ids) != len(texts):
            raise ValueError(f"{len(texts)} {name} texts but {len(ids)} record ids")
        check_vectors(f"{name}_vectors", vectors, len(texts))
        return cls(texts, ids, vectors)

    @property
    def grams(self) -> list[set[str]]:
        if self._grams is None:
            self._grams = [char_grams(t) for t in self.texts]
        return self._grams


def privacy_section(synthetic_texts: Sequence[str], synthetic_ids: Sequence[str],
                    source_texts: Sequence[str] | None = None, source_ids: Sequence[str] | None = None, *,
                    synthetic_vectors: np.ndarray | None = None, source_vectors: np.ndarray | None = None,
                    holdout_texts: Sequence[str] | None = None, holdout_ids: Sequence[str] | None = None,
                    holdout_vectors: np.ndarray | None = None, near_copy_embedding: float = NEAR_COPY_EMBEDDING,
                    near_copy_chars: float = NEAR_COPY_CHARS, long_span_words: int = LONG_SPAN_WORDS,
                    span_seed: int = SPAN_SEED, seed: int = 0) -> Section:
    """Every privacy metric of the synthetic rows (see the module docstring), with its evidence.

    Only the synthetic texts are required (PII in them). With ``source_texts``: PII
    replay, near-copies and verbatim spans; with a ``holdout_texts`` as well: DCR
    protection and membership inference. Vectors (unit rows, one per text) add the
    embedding distances; without them the character-5-gram distances stand alone.
    Metrics that cannot be computed are NaN, with the reason in their detail and in
    ``notes``.
    """
    syn = _Data.of("synthetic", synthetic_texts, synthetic_ids, synthetic_vectors)
    src = _Data.of("source", source_texts, source_ids, source_vectors)
    hold = _Data.of("holdout", holdout_texts, holdout_ids, holdout_vectors)
    if syn is None:
        raise ValueError("synthetic_texts is required (a list of texts, possibly empty)")
    section = Section("privacy")
    if not presidio_available():
        section.notes.append("names (persons) were not checked for PII: Presidio is not installed "
                             "(pip install presidio-analyzer and a spaCy English model)")
    hits = find_pii(syn.texts)
    if not syn.texts:
        section.metrics += [_metric(k, _NAN, "the synthetic dataset has no rows") for k in _LABELS]
        section.evidence["pii_hits"] = _hits_table(syn, hits, None, None)
        return section
    _pii_metrics(section, syn, hits)
    if src is None:
        why = "no private source rows were given (--source)"
        section.notes.append(f"PII replay, near-copies, copied spans, DCR protection and membership inference: {why}")
        section.metrics += [_metric(k, _NAN, why) for k in ("privacy.pii_replay_rate", "privacy.near_copy_share",
                                                            "privacy.longest_copied_span", "privacy.long_span_share",
                                                            "privacy.dcr_protection", "privacy.mia_auroc")]
        section.evidence["pii_hits"] = _hits_table(syn, hits, None, None)
        return section
    _replay_metrics(section, syn, src, hits)
    use_vectors = syn.vectors is not None and src.vectors is not None
    if not use_vectors:
        section.notes.append("embedding distances were skipped (no vectors of the synthetic and source rows): "
                             "near-copies, DCR protection and membership inference use character 5-gram distances")
    char_s, emb_s = _copy_metrics(section, syn, src, use_vectors, near_copy_embedding, near_copy_chars,
                                  long_span_words, span_seed)
    if hold is None:
        why = "no holdout rows were given (--holdout): real rows of the source's population the generator did not see"
        section.notes.append(f"DCR protection and membership inference: {why}")
        section.metrics += [_metric("privacy.dcr_protection", _NAN, why), _metric("privacy.mia_auroc", _NAN, why)]
        return section
    if use_vectors and hold.vectors is None:
        section.notes.append("the holdout has no vectors: DCR protection and membership inference use character "
                             "5-gram distances")
    _holdout_metrics(section, syn, src, hold, use_vectors and hold.vectors is not None, seed, char_s, emb_s)
    return section


def _pii_metrics(section: Section, syn: _Data, hits: pd.DataFrame) -> None:
    n = len(syn.texts)
    with_pii = int(hits["row"].nunique())
    kinds = ", ".join(f"{k} {v}" for k, v in hits["entity"].value_counts().sort_index().items()) or "none"
    section.metrics.append(_metric("privacy.pii_rows_share", with_pii / n if n else _NAN,
                                   f"{with_pii} of {n} synthetic rows hold PII; {len(hits)} hits ({kinds})",
                                   "pii_hits"))


def _hits_table(syn: _Data, hits: pd.DataFrame, replayed: pd.DataFrame | None,
                src: _Data | None) -> pd.DataFrame:
    """Every PII hit in the synthetic rows, replayed ones first; raw values in ``value`` and ``normalized``."""
    source_rows: dict[tuple[str, str], list[int]] = {}
    if replayed is not None:
        source_rows = {(e, v): rows for e, v, rows in zip(replayed["entity"], replayed["normalized"],
                                                          replayed["source_rows"], strict=True)}
    found = [source_rows.get((e, v), []) for e, v in zip(hits["entity"], hits["normalized"], strict=True)]
    table = pd.DataFrame({
        "record_id": [syn.ids[r] for r in hits["row"]],
        "entity": hits["entity"],
        "masked": [mask(v, e) for v, e in zip(hits["value"], hits["entity"], strict=True)],
        "value": hits["value"],
        "normalized": hits["normalized"],
        "replayed": [bool(rows) for rows in found],
        "source_records": [len(rows) for rows in found],
        "source_ids": [", ".join(src.ids[i] for i in rows[:5]) + (", …" if len(rows) > 5 else "") if src else ""
                       for rows in found],
        "start": hits["start"],
        "end": hits["end"],
    }).astype({"record_id": object, "masked": object, "replayed": bool, "source_records": np.int64,
               "source_ids": object})
    return table.sort_values("replayed", ascending=False, kind="stable").reset_index(drop=True)


def _replay_metrics(section: Section, syn: _Data, src: _Data, hits: pd.DataFrame) -> None:
    source_hits = find_pii(src.texts)
    by_entity = pii_replay(hits, source_hits)
    replayed = replayed_values(hits, source_hits)
    total, copied = int(by_entity["source_values"].sum()), int(by_entity["replayed"].sum())
    if total:
        worst = ", ".join(f"{r.entity} {r.replayed}/{r.source_values}" for r in by_entity.itertuples() if r.replayed)
        detail = f"{copied} of {total} distinct source PII values reappear in synthetic rows" + (
            f" ({worst})" if worst else "")
    else:
        detail = "the source holds no PII values, so none can be replayed"
    section.metrics.append(_metric("privacy.pii_replay_rate", copied / total if total else 0.0, detail,
                                   "replay_by_entity"))
    section.evidence["pii_hits"] = _hits_table(syn, hits, replayed, src)
    section.evidence["replay_by_entity"] = by_entity


def _copy_metrics(section: Section, syn: _Data, src: _Data, use_vectors: bool, near_embedding: float,
                  near_chars: float, long_words: int, span_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Near-copies and verbatim spans; returns the character and embedding DCRs to the source (NaN: no vectors)."""
    n = len(syn.texts)
    char_d, char_i = nearest_gram_sets(syn.grams, src.grams)
    if use_vectors:
        emb_d, emb_i = nearest_embedding(syn.vectors, src.vectors)
    else:
        emb_d, emb_i = np.full(n, _NAN), np.full(n, -1, dtype=np.int64)
    by_embedding = emb_d <= near_embedding  # False where NaN
    by_chars = (char_d <= near_chars) & (char_i >= 0)
    near = by_embedding | by_chars
    spans = longest_spans(syn.texts, src.texts, span_seed)
    rows = []
    for q in np.flatnonzero(near):
        s = int(emb_i[q] if by_embedding[q] and not by_chars[q] else char_i[q])
        emb = float(np.clip(1.0 - np.dot(syn.vectors[q], src.vectors[s]), 0.0, 2.0)) if use_vectors else _NAN
        rows.append({"synthetic_id": syn.ids[q], "source_id": src.ids[s], "embedding_distance": emb,
                     "char_distance": jaccard_distance(syn.grams[q], src.grams[s]),
                     "longest_span_words": int(spans["words"][q]),
                     "matched_by": "both" if by_embedding[q] and by_chars[q] else
                     "embedding" if by_embedding[q] else "characters",
                     "synthetic_text": syn.texts[q], "source_text": src.texts[s]})
    columns = ["synthetic_id", "source_id", "embedding_distance", "char_distance", "longest_span_words", "matched_by",
               "synthetic_text", "source_text"]
    copies = pd.DataFrame(rows, columns=columns)
    section.evidence["near_copies"] = copies.sort_values(["char_distance", "embedding_distance"], kind="stable",
                                                         ignore_index=True)
    shown = spans[spans["words"] > 0]
    section.evidence["spans"] = pd.DataFrame({
        "synthetic_id": [syn.ids[q] for q in shown.index], "source_id": [src.ids[r] for r in shown["row"]],
        "words": shown["words"].to_numpy(), "span": shown["span"].to_numpy(),
    }).sort_values("words", ascending=False, kind="stable", ignore_index=True)
    longest = int(spans["words"].max()) if n else 0
    long_rows = int((spans["words"] >= long_words).sum())
    how = (f"embedding DCR <= {near_embedding:g} (cosine >= {1 - near_embedding:g}) or " if use_vectors else "") + (
        f"character-5-gram Jaccard distance <= {near_chars:g}")
    section.metrics += [
        _metric("privacy.near_copy_share", float(near.mean()) if n else _NAN,
                f"{int(near.sum())} of {n} synthetic rows are near-copies of a source record ({how}); median "
                f"character DCR {np.median(char_d) if n else _NAN:.3f}"
                + (f", median embedding DCR {np.median(emb_d):.3f}" if use_vectors and n else ""), "near_copies"),
        _metric("privacy.longest_copied_span", float(longest) if n else _NAN,
                f"the longest run of words a synthetic row shares with one source record"
                f" (runs shorter than {span_seed} words are not measured and count as 0)", "spans"),
        _metric("privacy.long_span_share", long_rows / n if n else _NAN,
                f"{long_rows} of {n} synthetic rows share a run of at least {long_words} words with a source record",
                "spans"),
    ]
    return char_d, emb_d


def _holdout_metrics(section: Section, syn: _Data, src: _Data, hold: _Data, use_vectors: bool, seed: int,
                     char_s: np.ndarray, emb_s: np.ndarray) -> None:
    """DCR protection and membership inference; ``char_s`` / ``emb_s``: the synthetic rows' DCRs to the source."""
    table = []
    char_h, _ = nearest_gram_sets(syn.grams, hold.grams)
    table.append({"distance": "character-5-gram", **dcr_protection(char_s, char_h)})
    if use_vectors:
        emb_h, _ = nearest_embedding(syn.vectors, hold.vectors)
        table.append({"distance": "embedding", **dcr_protection(emb_s, emb_h)})
        attack = membership_inference(src.vectors, hold.vectors, syn.vectors, seed)
    else:
        attack = distance_attack(nearest_gram_sets(src.grams, syn.grams)[0],
                                 nearest_gram_sets(hold.grams, syn.grams)[0], seed)
    kind = "embedding" if use_vectors else "character-5-gram"
    section.evidence["dcr"] = pd.DataFrame(table)
    section.evidence["membership"] = pd.DataFrame([{"distance": kind, **attack}])
    dcr = table[-1]
    small = (f"; the holdout ({len(hold.texts)} rows) is smaller than half the source ({len(src.texts)}), "
             "which makes the score pessimistic") if len(hold.texts) < 0.5 * len(src.texts) else ""
    section.metrics += [
        _metric("privacy.dcr_protection", dcr["score"],
                f"{dcr['closer_to_training']:.1%} of synthetic rows are closer to the source than to the holdout "
                f"({kind} DCR, ties count half; median {dcr['median_to_training']:.3f} to the source vs "
                f"{dcr['median_to_holdout']:.3f} to the holdout); score min(1, 2 x (1 - share)): 1 = no sign of "
                f"copying{small}", "dcr"),
        _metric("privacy.mia_auroc", attack["auroc"],
                f"distance-to-nearest-synthetic attack ({kind}): AUROC over {attack['members']} source (member) vs "
                f"{attack['non_members']} holdout rows; 0.5 = no leak, 1 = every member is closer; best balanced "
                f"accuracy {attack['accuracy']:.2f} on {attack['pairs']} + {attack['pairs']} rows", "membership"),
    ]
