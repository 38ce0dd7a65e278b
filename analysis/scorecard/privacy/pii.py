"""PII in texts: detection with validation, masking, and replay of the private source's values.

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
"""

from __future__ import annotations

import importlib.util
import ipaddress
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

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
