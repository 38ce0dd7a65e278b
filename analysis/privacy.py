"""Privacy of a synthetic dataset version: PII, PII replayed from the private source, copies and membership.

Pure computation over lists of texts (one per record, :func:`analysis.text.record_text`)
and, optionally, their embeddings: unit-length float32 rows, one per text, a zero
row for an empty text. :func:`privacy_section` returns every metric with its
evidence as a :class:`~analysis.metrics.Section`; the functions it is made of are
public and tested one by one. Three datasets can take part: the *synthetic* rows
under test, the private *source* the generator saw (its training rows) and a
*holdout*: real rows of the same population that the generator did not see.

PII detection (:func:`find_pii`)
    Patterns, each confirmed by a validation, so that numbers that merely look like
    identifiers do not count:

    * ``email`` — ``local@domain.tld``;
    * ``phone`` — international (``+CC`` then groups, ``+44 20 7946 0958``), North
      American (``(555) 123-4567``, ``555-123-4567``) or national with a trunk ``0``
      and at least one separator (``020 7946 0958``, ``06 12 34 56 78``); 9 to 15
      digits (E.164 allows at most 15); bare digit runs without ``+`` and anything
      that reads as a date are not phones, so years, prices and version numbers are
      left alone;
    * ``credit_card`` — 13-19 digits, contiguous or in the groupings cards are printed
      in (4-4-4-4, 4-6-5, ...), an issuer digit 2-6 first (Mastercard, Amex, Diners,
      JCB, Visa, Discover, UnionPay), accepted only when the Luhn check passes
      (:func:`luhn_ok`);
    * ``iban`` — country code, two check digits, BBAN; the length must be the
      country's registered IBAN length (:data:`IBAN_LENGTHS`; countries not in the
      table: any length 15-34 ending at a group boundary) and ISO 13616's mod-97
      check must give 1 (:func:`iban_ok`);
    * ``us_ssn`` — ``AAA-GG-SSSS`` without the never-issued areas 000, 666, 900-999,
      group 00 or serial 0000;
    * ``uk_nino`` — UK National Insurance number: two prefix letters (first not D F I
      Q U V, second not D F I O Q U V, not BG GB KN NK NT TN ZZ), six digits, suffix A-D;
    * ``ipv4`` (four octets 0-255 without leading zeros, not part of a longer dotted
      run such as ``1.2.3.4.5``) and ``ipv6`` (validated by :mod:`ipaddress`, with at
      least two non-empty groups and a decimal digit, so ``a::b`` and ``std::map`` are
      not addresses);
    * ``url_credentials`` — a URL carrying ``user:password@host``;
    * ``person`` — names, only when Presidio (``presidio_analyzer``) is installed; it
      is not a dependency, and :func:`privacy_section` notes when names were not checked.

    Overlapping hits keep one: candidates are taken in the order of
    :data:`ENTITIES` (most specific first), longest first, and a candidate that
    overlaps a kept one is dropped. A card, IBAN or SSN *shape* that fails its check
    still blocks the weaker patterns, so an invalid card number is not reported as a
    phone either. Every hit carries a *normalised* value for comparing datasets:
    e-mail lower-cased, phone / card / SSN digits only, IBAN and NINO upper-case
    without spaces, IP addresses in canonical form, URL credentials as
    ``scheme://user:password@host``. Pages show :func:`mask`-ed values.

PII replay (:func:`pii_replay`, :func:`replayed_values`)
    Per entity type, the distinct normalised PII values of the source and how many
    of them reappear anywhere in the synthetic rows. ``replay rate = replayed /
    distinct source values``: the generator repeating a real customer's e-mail is a
    leak whatever text surrounds it.

Distance to the closest record (DCR)
    *Embedding*: ``d(x, y) = 1 - cos(x, y) = 1 - x·y`` for unit vectors, 0 for the
    same direction, 2 for opposite ones; the nearest row is found exactly by blocked
    matrix products (:data:`BLOCK` x :data:`BLOCK` similarities at a time, so memory
    stays bounded whatever the sizes). *Characters*: each text, normalised
    (:func:`analysis.text.normalize`, white space collapsed to one space), becomes its
    set ``G`` of character 5-grams (a shorter text is one gram); ``d(a, b) = 1 -
    |G_a ∩ G_b| / |G_a ∪ G_b|``, the Jaccard distance. It is exact, not MinHash: the
    intersections come from a sparse product of text x gram incidence matrices, i.e.
    an inverted index, and only rows sharing at least one gram are candidates; a text
    that shares no gram with any row has distance 1.0 and no nearest row (-1).

    A synthetic row is a *near-copy* when its embedding DCR to the source is at most
    :data:`NEAR_COPY_EMBEDDING` (cosine >= 0.95) or its character DCR at most
    :data:`NEAR_COPY_CHARS` (5-gram Jaccard >= 0.8).

Holdout baseline (SDMetrics' ``DCROverfittingProtection``)
    With a holdout, each synthetic row has a DCR to the source ``d_s`` and to the
    holdout ``d_h``. A generator that learned the population and not the rows makes
    rows no closer to what it saw than to what it did not, so about half the rows
    have ``d_s < d_h``. ``closer_to_training = mean(1[d_s < d_h] + w·1[d_s = d_h])``
    and ``score = min(1, 2·(1 - closer_to_training))``: 1 = no sign of copying, 0 =
    every row is closer to a training row. Two departures from SDMetrics, both
    deliberate: ties count ``w = ½`` (SDMetrics counts them as closer to the holdout,
    ``w = 0``; templated text has exact ties, and half is neutral), and nothing is
    subsampled (SDMetrics optionally scores a random subsample of the synthetic rows
    over several iterations; here every row counts, so the score is deterministic).
    SDMetrics' distance is a per-column tabular distance; here it is one of the two
    above. Its advice holds: a holdout smaller than half the source makes ``d_h``
    larger by chance alone and the score pessimistic.

Longest verbatim span (:func:`longest_spans`)
    For each synthetic row, the longest run of consecutive words (tokens of
    :func:`analysis.text.tokenize`) it shares with one source row. Every window of
    ``seed`` (8) tokens is hashed (:func:`analysis.text.ngram_hashes`); a synthetic
    window equal to a source window at positions ``(i, j)`` lies on the diagonal
    ``j - i``, and ``k`` matched windows at consecutive ``i`` on one diagonal of one
    source row make a shared run of ``k + seed - 1`` words. The longest run is exact
    (64-bit hash collisions aside) for spans of at least ``seed`` words; shorter
    spans are reported as 0. The section reports the maximum and the share of rows
    with a span of at least :data:`LONG_SPAN_WORDS`.

Membership inference (:func:`membership_inference`, :func:`distance_attack`)
    The distance-to-nearest-synthetic attack: an attacker holding the synthetic data
    and a real row guesses that the row was in the source (a *member*) when the row's
    distance to its nearest synthetic row is small. Source rows are the members,
    holdout rows the non-members. AUROC of the score ``-distance`` over all real rows
    (rank-based, ``P(s⁺ > s⁻) + ½·P(s⁺ = s⁻)``; :func:`analysis.evals.stats.auroc`);
    0.5 means the synthetic data tells the attacker nothing about who was in the
    source, 1 that every member is closer than every non-member. The accuracy is
    the balanced-attack framing: the larger group is subsampled (fixed seed) to the
    smaller one's size, so guessing gives 0.5, and the best accuracy over every
    threshold ``guess member when distance <= t`` is reported with that threshold's
    precision. Choosing the threshold on the same rows makes it an optimistic (upper)
    bound of what an attacker achieves.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy import sparse

from analysis.evals.stats import auroc
from analysis.metrics import Metric, Section, check_vectors
from analysis.text import TokenBatch, char_chunks, hash_tokens, ngram_hashes, normalize, tokenize

NEAR_COPY_EMBEDDING = 0.05  # embedding DCR at or below this (cosine >= 0.95) is a near-copy
NEAR_COPY_CHARS = 0.2  # character-5-gram Jaccard distance at or below this is a near-copy
LONG_SPAN_WORDS = 20  # a verbatim span this long counts as a long copied span
SPAN_SEED = 8  # word n-gram that seeds verbatim spans: shorter spans are not measured
CHAR_N = 5
BLOCK = 4096  # rows per side of one block of similarities
PAIR_BUDGET = 1 << 22  # candidate pairs held at once (character DCR, verbatim spans)

PII_COLUMNS = ["row", "entity", "value", "start", "end", "normalized"]
ENTITIES = ("url_credentials", "email", "iban", "credit_card", "us_ssn", "uk_nino", "ipv6", "ipv4", "phone",
            "person")

# ISO 13616 registry: IBAN length per country.
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27, "BR": 29,
    "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
    "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
    "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28,
    "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20,
    "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29, "PT": 25,
    "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27,
    "SO": 23, "ST": 25, "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}

_URL_CREDENTIALS = re.compile(r"\b([a-z][a-z0-9+.-]*)://([^\s:/?#@]+):([^\s/?#@]+)@([^\s/?#\"'<>]+)[^\s\"'<>]*",
                              re.IGNORECASE)
_EMAIL = re.compile(r"(?<![\w.%+-])[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,24}\b")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
_CARD = re.compile(r"(?<![\w+.,-])(?:\d{13,19}|\d{4}([ -])\d{4}\1\d{4}\1(?:\d{4}(?:\1\d{1,3})?|\d{1,3})"
                   r"|\d{4}([ -])\d{6}\2\d{4,5})(?![\w-]|[.,]\d)")
_SSN = re.compile(r"(?<![\w-])(\d{3})-(\d{2})-(\d{4})(?![\w-])")
_NINO = re.compile(r"\b(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b")
_IPV4 = re.compile(r"(?<![\w.])(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?!\w|\.\d)")
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|\d{1,3}(?:\.\d{1,3}){3})?(?![\w:]|\.\d)")
_PHONE = re.compile(
    r"(?<![\w.+\-$€£¥])(?:"
    r"\+\d{1,3}(?:[ .-]?\(\d{1,4}\))?(?:[ .-]?\d{1,5}){2,6}"  # international: +CC, optional (0), groups
    r"|(?:1[ .-])?(?:\(\d{3}\)[ .-]?|\d{3}[ .-])\d{3}[ .-]\d{4}"  # North American: (555) 123-4567, 555-123-4567
    r"|(?:\(0\d{1,4}\)[ .-]?|0\d{1,4}[ .-])\d{2,4}(?:[ .-]?\d{2,4}){1,3}"  # national, trunk 0: 020 7946 0958
    r")(?!\w|[.-]\d)"
)
_DAY = r"(?:0?[1-9]|[12]\d|3[01])"
_DATE = re.compile(rf"\b{_DAY}[./-]{_DAY}[./-](?:19|20)\d\d\b|\b(?:19|20)\d\d[./-]{_DAY}[./-]{_DAY}\b")


# -- checksums --------------------------------------------------------------------------------


def luhn_ok(digits: str) -> bool:
    """The Luhn (mod 10) check of a card number, given as digits only.

    From the rightmost digit (the check digit) leftwards, every second digit is
    doubled and 9 subtracted when the double exceeds 9; the number is valid when the
    sum of all digits is divisible by 10. It catches every single-digit error and
    most swaps of adjacent digits, and a random number passes with probability 1/10.
    """
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
    """ISO 13616 / ISO 7064 mod 97-10 check of an IBAN (spaces allowed, case-insensitive).

    Move the country code and check digits (the first four characters) to the end,
    replace each letter by two digits (A = 10, ..., Z = 35), and read the result as
    one integer: the IBAN is valid when it is 1 modulo 97. A random string passes
    with probability about 1/97; every single-character error and almost every swap
    is caught. The country's registered length is checked by :func:`find_pii`, not here.
    """
    s = iban.replace(" ", "").upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}", s):
        return False
    return int("".join(str(int(c, 36)) for c in s[4:] + s[:4])) % 97 == 1


# -- PII detection ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Candidate:
    entity: str
    start: int
    end: int
    normalized: str | None  # None: a shape that failed its check; it only blocks weaker patterns


def _url_credentials(text: str) -> Iterator[_Candidate]:
    for m in _URL_CREDENTIALS.finditer(text):
        end = m.end()
        while end > m.start() and text[end - 1] in ".,;:!?)]}'\"":
            end -= 1
        scheme, user, password, host = m.groups()
        host = host.rstrip(".,;:!?)]}'\"")
        yield _Candidate("url_credentials", m.start(), end, f"{scheme.lower()}://{user}:{password}@{host.lower()}")


def _emails(text: str) -> Iterator[_Candidate]:
    for m in _EMAIL.finditer(text):
        yield _Candidate("email", m.start(), m.end(), m.group(0).lower())


def _ibans(text: str) -> Iterator[_Candidate]:
    """IBAN shapes, cut to the country's length; a greedy shape may run into the next word, so each is cut back."""
    pos = 0
    while (m := _IBAN.search(text, pos)) is not None:
        chars = [i for i in range(m.start(), m.end()) if text[i] != " "]  # original index of each compact char
        country = text[m.start():m.start() + 2]
        length = IBAN_LENGTHS.get(country)
        lengths = [length] if length else range(min(len(chars), 34), 14, -1)
        found = None
        for n in lengths:
            if n > len(chars):
                continue
            end = chars[n - 1] + 1
            if end < len(text) and text[end].isalnum():
                continue  # not at a group boundary
            value = "".join(text[i] for i in chars[:n])
            if iban_ok(value):
                found = _Candidate("iban", m.start(), end, value)
                break
        if found is None and length and length <= len(chars):
            found = _Candidate("iban", m.start(), chars[length - 1] + 1, None)  # a registered shape, bad check
        if found is not None:
            yield found
            pos = found.end
        else:
            pos = m.start() + 1


def _cards(text: str) -> Iterator[_Candidate]:
    for m in _CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group(0))
        ok = 13 <= len(digits) <= 19 and digits[0] in "23456" and luhn_ok(digits)
        yield _Candidate("credit_card", m.start(), m.end(), digits if ok else None)


def _ssns(text: str) -> Iterator[_Candidate]:
    for m in _SSN.finditer(text):
        area, group, serial = m.groups()
        ok = area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"
        yield _Candidate("us_ssn", m.start(), m.end(), area + group + serial if ok else None)


def _ninos(text: str) -> Iterator[_Candidate]:
    for m in _NINO.finditer(text):
        yield _Candidate("uk_nino", m.start(), m.end(), m.group(0).replace(" ", ""))


def _ipv4s(text: str) -> Iterator[_Candidate]:
    for m in _IPV4.finditer(text):
        octets = m.groups()
        if all(int(o) <= 255 and (o == "0" or not o.startswith("0")) for o in octets):
            yield _Candidate("ipv4", m.start(), m.end(), ".".join(str(int(o)) for o in octets))


def _ipv6s(text: str) -> Iterator[_Candidate]:
    for m in _IPV6.finditer(text):
        value = m.group(0)
        groups = [g for g in value.split(":") if g]
        if len(groups) < 2 or not any(c.isdigit() for c in value):
            continue
        try:
            yield _Candidate("ipv6", m.start(), m.end(), ipaddress.IPv6Address(value).compressed)
        except ValueError:
            continue


def _phones(text: str) -> Iterator[_Candidate]:
    for m in _PHONE.finditer(text):
        value = m.group(0)
        digits = re.sub(r"\D", "", value)
        if 9 <= len(digits) <= 15 and not _DATE.search(value):
            yield _Candidate("phone", m.start(), m.end(), digits)


@lru_cache(maxsize=1)
def _presidio_engine() -> object | None:
    """Presidio's analyzer, when ``presidio_analyzer`` and a spaCy model are installed; else None."""
    if importlib.util.find_spec("presidio_analyzer") is None:
        return None
    try:
        from presidio_analyzer import AnalyzerEngine

        return AnalyzerEngine()
    except (ImportError, OSError, ValueError):  # no spaCy model, or a broken install
        return None


def presidio_available() -> bool:
    """Whether names (``person``) can be detected: Presidio and its NLP model load."""
    return _presidio_engine() is not None


def _persons(text: str) -> Iterator[_Candidate]:
    engine = _presidio_engine()
    if engine is None:
        return
    for r in engine.analyze(text=text, entities=["PERSON"], language="en"):  # type: ignore[attr-defined]
        value = text[r.start:r.end]
        yield _Candidate("person", r.start, r.end, " ".join(value.casefold().split()))


FINDERS: dict[str, Callable[[str], Iterator[_Candidate]]] = {
    "url_credentials": _url_credentials, "email": _emails, "iban": _ibans, "credit_card": _cards, "us_ssn": _ssns,
    "uk_nino": _ninos, "ipv6": _ipv6s, "ipv4": _ipv4s, "phone": _phones, "person": _persons,
}


def find_pii_in(text: str) -> list[tuple[str, int, int, str]]:
    """The PII hits of one text, ``(entity, start, end, normalized)`` in text order, overlaps resolved."""
    candidates = [c for entity in ENTITIES for c in FINDERS[entity](text)]
    rank = {e: i for i, e in enumerate(ENTITIES)}
    candidates.sort(key=lambda c: (rank[c.entity], c.start - c.end, c.start))
    kept: list[_Candidate] = []
    for c in candidates:
        if not any(c.start < k.end and k.start < c.end for k in kept):
            kept.append(c)
    kept.sort(key=lambda c: (c.start, c.end))
    return [(c.entity, c.start, c.end, c.normalized) for c in kept if c.normalized is not None]


def find_pii(texts: Sequence[str]) -> pd.DataFrame:
    """Every PII hit of every text: ``row, entity, value, start, end, normalized`` (module docstring).

    ``row`` indexes ``texts``; ``value`` is ``text[start:end]``; ``normalized`` the
    canonical form used to recognise the same value in another dataset.
    """
    rows = [(r, entity, text[start:end], start, end, normalized)
            for r, text in enumerate(texts) for entity, start, end, normalized in find_pii_in(text or "")]
    frame = pd.DataFrame(rows, columns=PII_COLUMNS)
    return frame.astype({"row": np.int64, "start": np.int64, "end": np.int64})


def _guess_entity(value: str) -> str:
    if "://" in value and "@" in value:
        return "url_credentials"
    if "@" in value:
        return "email"
    if not any(c.isdigit() for c in value) and re.fullmatch(r"[^\W\d_][\w'.-]*(?:\s+[^\W\d_][\w'.-]*)*", value):
        return "person"
    return "other"


def mask(value: str, entity: str | None = None) -> str:
    """A PII value for display: recognisable, not readable.

    ``jane.doe@example.com`` -> ``j***@example.com``; a URL keeps its host
    (``https://a***:***@host/db``); a name keeps initials (``J*** D***``); anything
    else keeps its punctuation and its last 4 letters or digits (2 when it has fewer
    than 12): ``4111 1111 1111 1111`` -> ``**** **** **** 1111``. ``entity`` is guessed
    from the value when not given.
    """
    entity = entity or _guess_entity(value)
    if entity == "email":
        local, _, domain = value.rpartition("@")
        return f"{local[:1]}***@{domain}"
    if entity == "url_credentials":
        return re.sub(r"://([^:/@\s]+):([^@\s]+)@", lambda m: f"://{m[1][:1]}***:***@", value, count=1)
    if entity == "person":
        return " ".join(f"{word[:1]}***" for word in value.split())
    positions = [i for i, c in enumerate(value) if c.isalnum()]
    keep = 4 if len(positions) >= 12 else 2 if len(positions) > 3 else 1
    hidden = set(positions[:-keep])
    return "".join("*" if i in hidden else c for i, c in enumerate(value))


def redact(text: str) -> str:
    """``text`` with every PII hit replaced by its :func:`mask`, for showing rows that hold PII."""
    for entity, start, end, _ in reversed(find_pii_in(text)):
        text = text[:start] + mask(text[start:end], entity) + text[end:]
    return text


# -- PII replay -------------------------------------------------------------------------------


def pii_replay(synthetic: pd.DataFrame, source: pd.DataFrame) -> pd.DataFrame:
    """Per entity type of the source's PII, how many of its distinct values reappear in the synthetic rows.

    Both arguments are :func:`find_pii` outputs. Columns: ``entity``,
    ``source_values`` (distinct normalised values in the source), ``replayed`` (of
    those, found in a synthetic row), ``share`` (``replayed / source_values``) and
    ``synthetic_rows`` (synthetic rows holding a replayed value).
    """
    seen = set(zip(synthetic["entity"], synthetic["normalized"], strict=True))
    out = []
    for entity, values in source.groupby("entity", sort=True)["normalized"]:
        distinct = set(values)
        replayed = {v for v in distinct if (entity, v) in seen}
        rows = synthetic.loc[(synthetic["entity"] == entity) & synthetic["normalized"].isin(replayed), "row"]
        out.append({"entity": entity, "source_values": len(distinct), "replayed": len(replayed),
                    "share": len(replayed) / len(distinct), "synthetic_rows": int(rows.nunique())})
    return pd.DataFrame(out, columns=["entity", "source_values", "replayed", "share", "synthetic_rows"]).astype(
        {"source_values": np.int64, "replayed": np.int64, "share": float, "synthetic_rows": np.int64})


def replayed_values(synthetic: pd.DataFrame, source: pd.DataFrame) -> pd.DataFrame:
    """Each replayed PII value with the rows it appears in: the evidence behind :func:`pii_replay`.

    Columns: ``entity``, ``normalized``, ``synthetic_rows`` and ``source_rows`` (sorted
    lists of distinct row indexes), ordered by entity and value.
    """
    syn = synthetic.groupby(["entity", "normalized"])["row"].agg(lambda r: sorted(set(r)))
    src = source.groupby(["entity", "normalized"])["row"].agg(lambda r: sorted(set(r)))
    common = syn.index.intersection(src.index).sort_values()
    return pd.DataFrame({"entity": [e for e, _ in common], "normalized": [v for _, v in common],
                         "synthetic_rows": [syn[k] for k in common], "source_rows": [src[k] for k in common]},
                        columns=["entity", "normalized", "synthetic_rows", "source_rows"])


# -- distances --------------------------------------------------------------------------------


def nearest_embedding(queries: np.ndarray, rows: np.ndarray, block: int = BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """Per query vector, ``1 - cos`` to its nearest row and that row's index (unit vectors; ties: lowest index).

    Exact, in blocks of ``block`` x ``block`` similarities (float32), so memory does
    not grow with ``len(queries) * len(rows)``. With no rows every distance is 1.0
    and every index -1.
    """
    q = np.ascontiguousarray(queries, dtype=np.float32)
    r = np.ascontiguousarray(rows, dtype=np.float32)
    best = np.full(len(q), -np.inf, dtype=np.float32)
    index = np.full(len(q), -1, dtype=np.int64)
    for a in range(0, len(q), block):
        qa = q[a:a + block]
        top, arg = best[a:a + block], index[a:a + block]  # views: updated in place
        for c in range(0, len(r), block):
            sims = qa @ r[c:c + block].T
            j = sims.argmax(axis=1)
            s = sims[np.arange(len(qa)), j]
            better = s > top
            top[better], arg[better] = s[better], j[better] + c
    dist = np.where(index >= 0, np.clip(1.0 - best.astype(np.float64), 0.0, 2.0), 1.0)
    return dist, index


def char_grams(text: str, n: int = CHAR_N) -> set[str]:
    """The set of character ``n``-grams of the normalised text (white space collapsed); a shorter text is one gram."""
    t = " ".join(normalize(text or "").split())
    if len(t) < n:
        return {t} if t else set()
    return {t[i:i + n] for i in range(len(t) - n + 1)}


def jaccard_distance(a: set[str], b: set[str]) -> float:
    """``1 - |a ∩ b| / |a ∪ b|``; 1.0 when both are empty."""
    union = len(a | b)
    return 1.0 - len(a & b) / union if union else 1.0


def _incidence(sets: Sequence[set[str]], vocab: dict[str, int], grow: bool) -> sparse.csr_matrix:
    """Binary texts x grams matrix; grams outside ``vocab`` are added when ``grow``, else left out."""
    indices: list[int] = []
    indptr = [0]
    for grams in sets:
        for g in grams:
            j = vocab.get(g)
            if j is None and grow:
                j = vocab[g] = len(vocab)
            if j is not None:
                indices.append(j)
        indptr.append(len(indices))
    data = np.ones(len(indices), dtype=np.int32)
    return sparse.csr_matrix((data, np.asarray(indices, dtype=np.int64), np.asarray(indptr, dtype=np.int64)),
                             shape=(len(sets), max(len(vocab), 1)))


def nearest_gram_sets(queries: Sequence[set[str]], rows: Sequence[set[str]]) -> tuple[np.ndarray, np.ndarray]:
    """:func:`nearest_chars` on precomputed gram sets."""
    dist = np.ones(len(queries))
    index = np.full(len(queries), -1, dtype=np.int64)
    if not len(queries) or not len(rows):
        return dist, index
    vocab: dict[str, int] = {}
    r = _incidence(rows, vocab, grow=True)
    q = _incidence(queries, vocab, grow=False)
    q_size = np.array([len(s) for s in queries], dtype=np.float64)
    r_size = np.array([len(s) for s in rows], dtype=np.float64)
    rt = r.T.tocsr()
    step = max(1, PAIR_BUDGET // len(rows))
    for a in range(0, len(queries), step):
        shared = (q[a:a + step] @ rt).tocsr()  # intersections of the pairs sharing at least one gram
        if not shared.nnz:
            continue
        counts = np.diff(shared.indptr)
        qi = np.repeat(np.arange(shared.shape[0]), counts)
        ri, common = shared.indices.astype(np.int64), shared.data.astype(np.float64)
        jac = common / (q_size[a + qi] + r_size[ri] - common)
        has = np.flatnonzero(counts)
        top = np.maximum.reduceat(jac, shared.indptr[has])  # per query with candidates: the best Jaccard
        best = np.full(shared.shape[0], -1.0)
        best[has] = top
        col = np.where(jac == best[qi], ri, len(rows))  # ties: the lowest row
        index[a + has] = np.minimum.reduceat(col, shared.indptr[has])
        dist[a + has] = 1.0 - top
    return dist, index


def nearest_chars(queries: Sequence[str], rows: Sequence[str], n: int = CHAR_N) -> tuple[np.ndarray, np.ndarray]:
    """Per query text, the character ``n``-gram Jaccard distance to its nearest row and that row's index.

    Exact over the rows sharing at least one gram with the query (found through an
    inverted index: a sparse product, :data:`PAIR_BUDGET` pairs at a time); a query
    sharing none gets distance 1.0 and index -1. Ties: the lowest row index.
    """
    return nearest_gram_sets([char_grams(t, n) for t in queries], [char_grams(t, n) for t in rows])


# -- verbatim spans ---------------------------------------------------------------------------


def _token_batch(texts: Sequence[str]) -> TokenBatch:
    """:func:`analysis.text.hash_tokens` of ``texts``, hashed in chunks of a few hundred kilobytes."""
    hashes = [np.empty(0, dtype=np.uint64)]
    offsets = [np.zeros(1, dtype=np.int64)]
    for a, b in char_chunks(texts, 1 << 18):
        batch = hash_tokens(texts[a:b])
        offsets.append(batch.offsets[1:] + sum(len(h) for h in hashes))
        hashes.append(batch.hashes)
    return TokenBatch(np.concatenate(hashes), np.concatenate(offsets))


@dataclass(frozen=True)
class _Windows:
    """Hashes of every ``n``-token window of a token batch, by the global index of its first token."""

    hashes: np.ndarray  # uint64, one per window start (len(tokens) - n + 1)
    owner: np.ndarray  # int64: the text of the window's first token
    first: np.ndarray  # int64: the first window start of that text
    last: np.ndarray  # int64: the last window start of that text whose window ends inside it

    @classmethod
    def of(cls, batch: TokenBatch, n: int) -> _Windows:
        hashes = ngram_hashes(batch.hashes, n)
        owner = batch.text_of_token()[:len(hashes)]
        return cls(hashes, owner, batch.offsets[owner], batch.offsets[owner + 1] - n)

    @property
    def inside(self) -> np.ndarray:
        return np.arange(len(self.hashes)) <= self.last


def longest_spans(queries: Sequence[str], rows: Sequence[str], seed: int = SPAN_SEED) -> pd.DataFrame:
    """Per query text, the longest run of consecutive words it shares with one row (module docstring).

    Columns: ``words`` (0 when no run of ``seed`` words is shared), ``row`` (the row,
    -1 when none; ties: the lowest row, then the earliest position), ``start`` (the
    run's first token in the query) and ``span`` (its words, normalised, joined by
    spaces).

    Windows are addressed by the global index of their first token. A matched pair
    of windows ``(u, g)`` (query, row) *starts* a run unless ``(u - 1, g - 1)`` also
    match inside the same texts; each start is then extended one window at a time,
    all starts at once, while ``(u + k, g + k)`` match. Every matched pair belongs
    to exactly one run, so the work is linear in the matched pairs, which are
    enumerated :data:`PAIR_BUDGET` at a time.
    """
    queries, rows = [t or "" for t in queries], [t or "" for t in rows]
    words = np.zeros(len(queries), dtype=np.int64)
    best_row = np.full(len(queries), -1, dtype=np.int64)
    best_start = np.zeros(len(queries), dtype=np.int64)
    q, r = _Windows.of(_token_batch(queries), seed), _Windows.of(_token_batch(rows), seed)
    r_index = np.flatnonzero(r.inside)
    r_index = r_index[np.argsort(r.hashes[r_index], kind="stable")]
    r_sorted = r.hashes[r_index]
    q_index = np.flatnonzero(q.inside)  # ascending, so each text's windows are contiguous
    lo = np.searchsorted(r_sorted, q.hashes[q_index], "left")
    counts = np.searchsorted(r_sorted, q.hashes[q_index], "right") - lo
    bounds = np.r_[0, np.cumsum(counts)]
    a = 0
    while a < len(q_index):  # blocks of query windows with about PAIR_BUDGET matched pairs, whole texts
        b = max(int(np.searchsorted(bounds, bounds[a] + PAIR_BUDGET, "right")) - 1, a + 1)
        text_end = q.owner[q_index[b - 1]]
        b = int(np.searchsorted(q.owner[q_index], text_end, "right"))
        w = np.arange(a, b)[counts[a:b] > 0]
        a = b
        if not len(w):
            continue
        reps = counts[w]
        u = np.repeat(q_index[w], reps)
        g = r_index[np.repeat(lo[w] - np.cumsum(reps) + reps, reps) + np.arange(int(reps.sum()))]
        continues = (u > q.first[u]) & (g > r.first[g])
        continues &= q.hashes[np.maximum(u - 1, 0)] == r.hashes[np.maximum(g - 1, 0)]
        u, g = u[~continues], g[~continues]
        length = np.ones(len(u), dtype=np.int64)
        active, step = np.arange(len(u)), 1
        while len(active):
            nu, ng = u[active] + step, g[active] + step
            ok = (nu <= q.last[u[active]]) & (ng <= r.last[g[active]])  # both windows still inside their texts
            ok &= q.hashes[np.where(ok, nu, 0)] == r.hashes[np.where(ok, ng, 0)]
            active = active[ok]
            length[active] += 1
            step += 1
        text, row, pos, span = q.owner[u], r.owner[g], u - q.first[u], length + seed - 1
        pick = np.lexsort((pos, row, -span, text))
        text, row, pos, span = text[pick], row[pick], pos[pick], span[pick]
        first = np.r_[True, text[1:] != text[:-1]]
        words[text[first]], best_row[text[first]], best_start[text[first]] = span[first], row[first], pos[first]
    spans = [" ".join(tokenize(queries[i])[best_start[i]:best_start[i] + words[i]]) if words[i] else ""
             for i in range(len(queries))]
    return pd.DataFrame({"words": words, "row": best_row, "start": best_start, "span": spans})


# -- holdout baseline and membership inference ------------------------------------------------


def dcr_protection(to_training: np.ndarray, to_holdout: np.ndarray, tie_weight: float = 0.5) -> dict[str, float]:
    """SDMetrics' DCROverfittingProtection from each synthetic row's DCR to the training rows and to the holdout.

    Returns ``closer_to_training`` (share of rows with ``d_s < d_h``, ties counting
    ``tie_weight``; SDMetrics uses 0), ``closer_to_holdout`` (its complement),
    ``score = min(1, 2 * (1 - closer_to_training))`` (1 = no sign of copying), the
    medians of both DCRs and the number of rows; NaN values without rows.
    """
    d_s, d_h = np.asarray(to_training, dtype=np.float64), np.asarray(to_holdout, dtype=np.float64)
    if d_s.shape != d_h.shape:
        raise ValueError(f"one DCR per synthetic row on both sides, got {d_s.shape} and {d_h.shape}")
    if not len(d_s):
        return {"closer_to_training": math.nan, "closer_to_holdout": math.nan, "score": math.nan,
                "median_to_training": math.nan, "median_to_holdout": math.nan, "rows": 0}
    closer = float(np.mean((d_s < d_h) + tie_weight * (d_s == d_h)))
    return {"closer_to_training": closer, "closer_to_holdout": 1.0 - closer, "score": min(1.0, 2.0 * (1.0 - closer)),
            "median_to_training": float(np.median(d_s)), "median_to_holdout": float(np.median(d_h)),
            "rows": int(len(d_s))}


def distance_attack(member_distance: np.ndarray, non_member_distance: np.ndarray, seed: int = 0) -> dict[str, float]:
    """The distance-to-nearest-synthetic membership attack from each real row's distance (module docstring).

    ``auroc``: of ``-distance`` with members positive, over all rows. ``accuracy``:
    the best over thresholds ``distance <= t`` on a balanced sample (``pairs`` rows of
    each group, the larger group subsampled with ``seed``), at least 0.5 (guessing
    "no member" for everyone); ``precision`` and ``threshold`` at that accuracy (NaN
    and -inf when no threshold beats 0.5).
    """
    members = np.asarray(member_distance, dtype=np.float64)
    others = np.asarray(non_member_distance, dtype=np.float64)
    out = {"auroc": math.nan, "accuracy": math.nan, "precision": math.nan, "threshold": math.nan,
           "members": int(len(members)), "non_members": int(len(others)), "pairs": 0}
    if not len(members) or not len(others):
        return out
    labels = np.r_[np.ones(len(members), dtype=bool), np.zeros(len(others), dtype=bool)]
    out["auroc"] = auroc(-np.r_[members, others], labels)
    rng = np.random.default_rng(seed)
    n = min(len(members), len(others))
    m = np.sort(rng.choice(members, n, replace=False) if len(members) > n else members)
    h = np.sort(rng.choice(others, n, replace=False) if len(others) > n else others)
    thresholds = np.unique(np.r_[m, h])
    tp = np.searchsorted(m, thresholds, "right")  # members guessed members
    fp = np.searchsorted(h, thresholds, "right")  # non-members guessed members
    accuracy = (tp + n - fp) / (2 * n)
    best = int(np.argmax(accuracy))
    out["pairs"] = n
    if accuracy[best] > 0.5:
        out |= {"accuracy": float(accuracy[best]), "precision": float(tp[best] / (tp[best] + fp[best])),
                "threshold": float(thresholds[best])}
    else:
        out |= {"accuracy": 0.5, "threshold": -math.inf}
    return out


def membership_inference(source_vectors: np.ndarray, holdout_vectors: np.ndarray, synthetic_vectors: np.ndarray,
                         seed: int = 0) -> dict[str, float]:
    """The distance attack on embeddings: source rows are members, holdout rows non-members (module docstring).

    Each real row's distance is ``1 - cos`` to its nearest synthetic row; see
    :func:`distance_attack` for what is returned.
    """
    to_synthetic_s, _ = nearest_embedding(source_vectors, synthetic_vectors)
    to_synthetic_h, _ = nearest_embedding(holdout_vectors, synthetic_vectors)
    return distance_attack(to_synthetic_s, to_synthetic_h, seed)


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
