"""Privacy of a synthetic dataset version: PII, PII replayed from the private source, near-copies, membership.

Pure computation; :func:`privacy_section` returns a :class:`~analysis.metrics.Section`.

PII
    Patterns with validation, so numbers that merely look like identifiers do not
    count: e-mail; phone (``+CC`` international or a national number of 9-15 digits
    in groups); payment card (13-19 digits, accepted only when the Luhn check
    passes); IBAN (accepted only when ISO 13616's mod-97 check gives 1); US SSN
    (without the never-issued areas 000, 666, 9xx, group 00, serial 0000); UK
    National Insurance number; IPv4 (octets 0-255) and IPv6; URLs carrying
    ``user:password@``. Names come from Presidio when it is installed (it is not a
    dependency; the section notes when names were not checked). Overlapping hits
    keep the first, longest one, so a card number is not also a phone number. Each
    hit keeps a *normalised* value (lower-cased e-mail, digits only, ...) so the same
    value is recognised across datasets; pages show :func:`mask`-ed values.

PII replay
    The share of the distinct normalised PII values of the private source that
    reappear anywhere in the synthetic rows, per entity type: the generator
    repeating a real customer's e-mail is a leak whatever the text around it.

Near-copies: distance to the closest record (DCR)
    Embedding DCR = ``1 − cos`` to the nearest source row; character DCR = Jaccard
    distance of character 5-gram sets to the nearest source row sharing any 5-gram.
    A synthetic row is a near-copy at embedding DCR ≤ 0.05 or character DCR ≤ 0.2.
    Against the holdout, as SDMetrics' ``DCROverfittingProtection`` does: the share
    of synthetic rows closer to the source (training) rows than to the holdout
    rows (ties count half); its score ``min(1, 2 · (1 − share))`` is 1 when the
    synthetic rows are no closer to what the generator saw than to what it did not.
    The longest verbatim span is the longest run of words a synthetic row shares
    with one source row.

Membership inference
    The distance attack: each real row (source = member, holdout = non-member) is
    scored by minus its distance to the nearest synthetic row; AUROC of that score,
    and the best accuracy of a threshold on a balanced sample. 0.5 means the
    synthetic data tells an attacker nothing about who was in the source.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.metrics import Metric, Section
from analysis.text import normalize, tokenize

NEAR_COPY_EMBEDDING = 0.05
NEAR_COPY_CHARS = 0.2
LONG_SPAN_WORDS = 20
CHAR_N = 5

PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("url_credentials", re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s:/@]+:[^\s@/]+@[^\s/]+[^\s]*", re.IGNORECASE)),
    ("email", re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")),
    ("iban", re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")),
    ("credit_card", re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")),
    ("us_ssn", re.compile(r"\b\d{3}-\d{2}-\d{4}\b")),
    ("uk_nino", re.compile(r"\b(?![DFIQUV])[A-Z](?![DFIOQUV])[A-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b")),
    ("ipv6", re.compile(r"(?<![\w:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])")),
    ("ipv4", re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")),
    ("phone", re.compile(r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,5}(?:[ .-]\d{2,5}){1,4}(?!\w)")),
]


SHAPES_THAT_BLOCK = {"iban", "credit_card", "us_ssn"}


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum of a card number: double every second digit from the right, sum, divisible by 10."""
    if not digits.isdigit() or len(digits) < 2:
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(iban: str) -> bool:
    """ISO 13616: move the first four characters to the end, letters to numbers (A=10 … Z=35), mod 97 == 1."""
    s = iban.replace(" ", "").upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{10,30}", s):
        return False
    return int("".join(str(int(c, 36)) for c in s[4:] + s[:4])) % 97 == 1


def _check(entity: str, value: str) -> str | None:
    """The normalised value when ``value`` is a valid ``entity``, else None."""
    digits = re.sub(r"\D", "", value)
    if entity == "email":
        return value.lower()
    if entity == "credit_card":
        return digits if 13 <= len(digits) <= 19 and luhn_ok(digits) else None
    if entity == "iban":
        return value.replace(" ", "").upper() if iban_ok(value) else None
    if entity == "us_ssn":
        valid = re.fullmatch(r"(?!000|666|9\d\d)\d{3}(?!00)\d{2}(?!0000)\d{4}", digits)
        return digits if valid else None
    if entity == "uk_nino":
        return value.replace(" ", "").upper()
    if entity in ("ipv4", "ipv6"):
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            return None
    if entity == "phone":
        plain_number = re.fullmatch(r"\d+", value) is not None
        dated = re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) is not None
        return digits if 9 <= len(digits) <= 15 and not plain_number and not dated else None
    if entity == "url_credentials":
        return value
    return None


def find_pii(texts: Sequence[str]) -> pd.DataFrame:
    """Every PII hit: ``row, entity, value, start, end, normalized`` (see the module docstring)."""
    rows = []
    for r, text in enumerate(texts):
        taken: list[tuple[int, int]] = []
        for entity, pattern in PATTERNS:
            for m in pattern.finditer(text):
                if any(m.start() < e and s < m.end() for s, e in taken):
                    continue
                normalized = _check(entity, m.group(0))
                if normalized is not None or entity in SHAPES_THAT_BLOCK:
                    # an invalid IBAN, card or SSN is not a phone number either
                    taken.append((m.start(), m.end()))
                if normalized is not None:
                    rows.append({"row": r, "entity": entity, "value": m.group(0), "start": m.start(),
                                 "end": m.end(), "normalized": normalized})
    return pd.DataFrame(rows, columns=["row", "entity", "value", "start", "end", "normalized"])


def presidio_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("presidio_analyzer") is not None


def mask(value: str) -> str:
    """A value for display: recognisable, not readable (``j***@example.org``, ``•••• 1234``)."""
    if "@" in value and "://" not in value:
        local, _, domain = value.partition("@")
        return f"{local[:1]}***@{domain}"
    if "://" in value:
        return re.sub(r"://[^@]+@", "://***:***@", value)
    keep = 4 if len(value) > 8 else 2
    return "•" * max(len(value) - keep, 3) + value[-keep:]


def redact(text: str) -> str:
    """``text`` with every PII hit replaced by its :func:`mask`, for showing rows that hold PII."""
    hits = find_pii([text])
    for h in hits.sort_values("start", ascending=False).itertuples():
        text = text[: h.start] + mask(h.value) + text[h.end:]
    return text


def pii_replay(synthetic: pd.DataFrame, source: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per entity type the source's distinct values and how many reappear in synthetic rows; and each replayed value
    with its synthetic and source rows."""
    by_entity = []
    replayed = []
    src_values = source.groupby(["entity", "normalized"])["row"].apply(list)
    syn_values = synthetic.groupby(["entity", "normalized"])["row"].apply(list)
    for entity in sorted(set(source["entity"])):
        values = src_values.loc[entity]
        hits = [v for v in values.index if (entity, v) in syn_values.index]
        by_entity.append({"entity": entity, "source_values": len(values), "replayed": len(hits),
                          "share": len(hits) / len(values) if len(values) else math.nan})
        replayed += [{"entity": entity, "normalized": v, "synthetic_rows": syn_values.loc[(entity, v)],
                      "source_rows": values.loc[v]} for v in hits]
    return (pd.DataFrame(by_entity, columns=["entity", "source_values", "replayed", "share"]),
            pd.DataFrame(replayed, columns=["entity", "normalized", "synthetic_rows", "source_rows"]))


# -- distances --------------------------------------------------------------------------------


def nearest_embedding(queries: np.ndarray, rows: np.ndarray, block: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Per query the ``1 − cos`` distance to its nearest row (unit vectors) and that row's index."""
    import faiss

    index = faiss.IndexFlatIP(rows.shape[1])
    index.add(np.ascontiguousarray(rows, dtype=np.float32))
    dist, idx = np.empty(len(queries)), np.empty(len(queries), dtype=np.int64)
    for start in range(0, len(queries), block):
        sims, found = index.search(np.ascontiguousarray(queries[start:start + block], dtype=np.float32), 1)
        dist[start:start + block], idx[start:start + block] = 1 - sims[:, 0], found[:, 0]
    return np.clip(dist, 0, 2), idx


def char_grams(text: str, n: int = CHAR_N) -> set[str]:
    t = " ".join(normalize(text).split())
    return {t[i:i + n] for i in range(len(t) - n + 1)} if len(t) >= n else ({t} if t else set())


def nearest_chars(queries: Sequence[str], rows: Sequence[str], n: int = CHAR_N) -> tuple[np.ndarray, np.ndarray]:
    """Per query the Jaccard distance of character n-gram sets to the nearest row sharing any n-gram (1.0 and -1
    when none does), through an inverted index of the rows' n-grams."""
    row_sets = [char_grams(t, n) for t in rows]
    inverted: dict[str, list[int]] = defaultdict(list)
    for i, grams in enumerate(row_sets):
        for g in grams:
            inverted[g].append(i)
    dist, idx = np.ones(len(queries)), np.full(len(queries), -1, dtype=np.int64)
    for q, text in enumerate(queries):
        grams = char_grams(text, n)
        shared: dict[int, int] = defaultdict(int)
        for g in grams:
            for i in inverted.get(g, ()):
                shared[i] += 1
        for i, common in shared.items():
            d = 1 - common / (len(grams) + len(row_sets[i]) - common)
            if d < dist[q]:
                dist[q], idx[q] = d, i
    return dist, idx


def longest_span(query: str, rows: Sequence[str], candidates: Sequence[int]) -> tuple[int, int, str]:
    """The longest run of words ``query`` shares with one of ``rows[candidates]``: (length, row, the words)."""
    words = tokenize(query)
    best = (0, -1, "")
    for c in candidates:
        other = tokenize(rows[c])
        prev = [0] * (len(other) + 1)
        for i in range(1, len(words) + 1):  # longest common substring, by words, in O(len · len) time
            cur = [0] * (len(other) + 1)
            for j in range(1, len(other) + 1):
                if words[i - 1] == other[j - 1]:
                    cur[j] = prev[j - 1] + 1
                    if cur[j] > best[0]:
                        best = (cur[j], int(c), " ".join(words[i - cur[j]:i]))
            prev = cur
    return best


def dcr_protection(to_training: np.ndarray, to_holdout: np.ndarray) -> tuple[float, float]:
    """SDMetrics' DCROverfittingProtection: (share of synthetic rows closer to training, ties half; its score)."""
    closer = float(((to_training < to_holdout) + 0.5 * (to_training == to_holdout)).mean())
    return closer, min(1.0, 2 * (1 - closer))


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    from analysis.evals.stats import auroc as _auroc

    return _auroc(scores, labels)


def membership_inference(source_distance: np.ndarray, holdout_distance: np.ndarray, seed: int = 0) -> dict[str, float]:
    """The distance attack from each real row's distance to its nearest synthetic row (module docstring)."""
    rng = np.random.default_rng(seed)
    n = min(len(source_distance), len(holdout_distance))
    members = rng.choice(source_distance, n, replace=False)
    others = rng.choice(holdout_distance, n, replace=False)
    scores = -np.r_[members, others]
    labels = np.r_[np.ones(n, bool), np.zeros(n, bool)]
    best_acc, best_precision = 0.5, math.nan
    for t in np.unique(scores):
        guess = scores >= t
        acc = float((guess == labels).mean())
        if acc > best_acc:
            best_acc, best_precision = acc, float(labels[guess].mean())
    return {"auroc": auroc(scores, labels), "accuracy": best_acc, "precision": best_precision, "pairs": n}


# -- the section ------------------------------------------------------------------------------


def privacy_section(synthetic_texts: Sequence[str], synthetic_ids: Sequence[str],
                    source_texts: Sequence[str] | None = None, source_ids: Sequence[str] | None = None, *,
                    synthetic_vectors: np.ndarray | None = None, source_vectors: np.ndarray | None = None,
                    holdout_texts: Sequence[str] | None = None, holdout_ids: Sequence[str] | None = None,
                    holdout_vectors: np.ndarray | None = None) -> Section:
    """PII, replay, near-copies, DCR against the holdout and membership inference (see the module docstring)."""
    texts, ids = list(synthetic_texts), list(synthetic_ids)
    n = len(texts)
    section = Section("privacy")
    if not presidio_available():
        section.notes.append("names (persons) were not checked: Presidio is not installed "
                             "(`pip install presidio-analyzer` and a spaCy model)")
    hits = find_pii(texts)
    rows_with = hits["row"].nunique()
    section.metrics.append(Metric("privacy.pii_rows_share", rows_with / n if n else math.nan, "Rows with PII", False,
                                  f"{rows_with} of {n} rows, {len(hits)} hits", "pii_hits"))
    evidence = pd.DataFrame({"record_id": [ids[r] for r in hits["row"]], "entity": hits["entity"],
                             "masked": [mask(v) for v in hits["value"]], "value": hits["value"],
                             "normalized": hits["normalized"], "replayed": False, "source_ids": ""})
    nan = math.nan
    if source_texts is None:
        why = "no private source dataset (--source)"
        section.notes.append(f"replay, near-copies, DCR and membership inference need {why}")
        section.metrics += [Metric(k, nan, label, hib, why) for k, label, hib in (
            ("privacy.pii_replay_rate", "PII replay", False), ("privacy.near_copy_share", "Near-copies", False),
            ("privacy.longest_copied_span", "Longest copied span", False),
            ("privacy.dcr_protection", "DCR protection", True), ("privacy.mia_auroc", "Membership inference", False))]
        section.evidence["pii_hits"] = evidence
        return section
    src_texts, src_ids = list(source_texts), list(source_ids or [str(i) for i in range(len(source_texts))])
    src_hits = find_pii(src_texts)
    by_entity, replayed = pii_replay(hits, src_hits)
    total, copied = int(by_entity["source_values"].sum()), int(by_entity["replayed"].sum())
    section.metrics.append(Metric("privacy.pii_replay_rate", copied / total if total else 0.0, "PII replay", False,
                                  f"{copied} of {total} distinct source PII values reappear", "replay_by_entity"))
    lookup = {(r.entity, r.normalized): ", ".join(src_ids[i] for i in r.source_rows[:5]) for r in replayed.itertuples()}
    evidence["source_ids"] = [lookup.get((e, v), "") for e, v in zip(evidence["entity"], evidence["normalized"],
                                                                       strict=True)]
    evidence["replayed"] = evidence["source_ids"] != ""
    section.evidence["pii_hits"] = evidence
    section.evidence["replay_by_entity"] = by_entity

    char_d, char_i = nearest_chars(texts, src_texts)
    emb_d, emb_i = (nearest_embedding(synthetic_vectors, source_vectors)
                    if synthetic_vectors is not None and source_vectors is not None else (np.full(n, nan), char_i))
    near = (char_d <= NEAR_COPY_CHARS) | (emb_d <= NEAR_COPY_EMBEDDING)
    spans = []
    for q in range(n):
        candidates = sorted({int(c) for c in (char_i[q], emb_i[q]) if c >= 0})
        spans.append(longest_span(texts[q], src_texts, candidates))
    longest = max((s[0] for s in spans), default=0)
    long_rows = sum(s[0] >= LONG_SPAN_WORDS for s in spans)
    section.evidence["near_copies"] = pd.DataFrame([{
        "synthetic_id": ids[q], "source_id": src_ids[int(emb_i[q] if emb_d[q] <= NEAR_COPY_EMBEDDING else char_i[q])],
        "embedding_distance": emb_d[q], "char_distance": char_d[q], "longest_span_words": spans[q][0],
        "synthetic_text": texts[q], "source_text": src_texts[int(emb_i[q] if emb_d[q] <= NEAR_COPY_EMBEDDING
                                                                else char_i[q])]} for q in np.flatnonzero(near)],
        columns=["synthetic_id", "source_id", "embedding_distance", "char_distance", "longest_span_words",
                 "synthetic_text", "source_text"])
    section.evidence["spans"] = pd.DataFrame([{"synthetic_id": ids[q], "source_id": src_ids[s[1]], "words": s[0],
                                               "span": s[2]} for q, s in enumerate(spans) if s[0] >= 8],
                                             columns=["synthetic_id", "source_id", "words", "span"])
    section.metrics += [
        Metric("privacy.near_copy_share", float(near.mean()) if n else nan, "Near-copies", False,
               f"{int(near.sum())} of {n} rows within {NEAR_COPY_EMBEDDING:g} embedding or {NEAR_COPY_CHARS:g} "
               "character-5-gram distance of a source record", "near_copies"),
        Metric("privacy.longest_copied_span", float(longest), "Longest copied span", False,
               f"words in a row copied from one source record; {long_rows} rows copy ≥ {LONG_SPAN_WORDS}", "spans"),
    ]
    if holdout_texts is None:
        why = "no holdout dataset (--holdout): private rows the generator did not see"
        section.notes.append(f"DCR protection and membership inference need {why}")
        section.metrics += [Metric("privacy.dcr_protection", nan, "DCR protection", True, why),
                            Metric("privacy.mia_auroc", nan, "Membership inference", False, why)]
        return section
    hold_texts = list(holdout_texts)
    use_emb = synthetic_vectors is not None and source_vectors is not None and holdout_vectors is not None
    if use_emb:
        to_hold, _ = nearest_embedding(synthetic_vectors, holdout_vectors)
        to_train, kind = emb_d, "embedding"
        src_to_syn, _ = nearest_embedding(source_vectors, synthetic_vectors)
        hold_to_syn, _ = nearest_embedding(holdout_vectors, synthetic_vectors)
    else:
        to_hold, _ = nearest_chars(texts, hold_texts)
        to_train, kind = char_d, "character-5-gram"
        src_to_syn, _ = nearest_chars(src_texts, texts)
        hold_to_syn, _ = nearest_chars(hold_texts, texts)
    closer, score = dcr_protection(to_train, to_hold)
    attack = membership_inference(src_to_syn, hold_to_syn)
    section.metrics += [
        Metric("privacy.dcr_protection", score, "DCR protection", True,
               f"{closer:.0%} of rows are closer to the source than to the holdout ({kind} DCR, median "
               f"{np.median(to_train):.3f} vs {np.median(to_hold):.3f}); 1 = no sign of copying"),
        Metric("privacy.mia_auroc", attack["auroc"], "Membership inference", False,
               f"AUROC of the distance attack on {attack['pairs']} source vs {attack['pairs']} holdout rows; "
               f"best accuracy {attack['accuracy']:.2f}; 0.5 = no leak"),
    ]
    return section
