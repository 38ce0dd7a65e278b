"""Privacy checks (scorecard.privacy): planted PII found and clean rows left alone, distances against brute force."""

from __future__ import annotations

import math
import random

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from synthscope.core.text import tokenize
from synthscope.scorecard import privacy
from synthscope.scorecard.privacy import distances

# (entity, text, the planted value): every kind, phones in several formats
PLANTED = [
    ("email", "write to Jane.Doe@Example.com today", "Jane.Doe@Example.com"),
    ("email", "cc: ops-team+alerts@mail.example.co.uk.", "ops-team+alerts@mail.example.co.uk"),
    ("phone", "call +44 20 7946 0958 after six", "+44 20 7946 0958"),
    ("phone", "or +1 (555) 123-4567 in the US", "+1 (555) 123-4567"),
    ("phone", "office (555) 123-4567, ask for Sam", "(555) 123-4567"),
    ("phone", "mobile 555-123-4567", "555-123-4567"),
    ("phone", "London desk 020 7946 0958.", "020 7946 0958"),
    ("phone", "Paris 06 12 34 56 78 anytime", "06 12 34 56 78"),
    ("phone", "whatsapp +4915112345678", "+4915112345678"),
    ("credit_card", "card 4111 1111 1111 1111 was charged", "4111 1111 1111 1111"),
    ("credit_card", "mastercard 5555-5555-5555-4444 on file", "5555-5555-5555-4444"),
    ("credit_card", "amex 378282246310005", "378282246310005"),
    ("iban", "refund to GB82 WEST 1234 5698 7654 32 please", "GB82 WEST 1234 5698 7654 32"),
    ("iban", "pay DE89 3704 0044 0532 0130 00 by Friday", "DE89 3704 0044 0532 0130 00"),
    ("iban", "account DE89370400440532013000.", "DE89370400440532013000"),
    ("us_ssn", "my SSN is 123-45-6789", "123-45-6789"),
    ("uk_nino", "NI number AB 12 34 56 C", "AB 12 34 56 C"),
    ("uk_nino", "nino: QQ123456C? no: JG103759A", "JG103759A"),
    ("ipv4", "logged in from 192.168.10.20.", "192.168.10.20"),
    ("ipv6", "and from 2001:db8::8a2e:370:7334 too", "2001:db8::8a2e:370:7334"),
    ("ipv6", "mapped ::ffff:192.0.2.1 here", "::ffff:192.0.2.1"),
    ("url_credentials", "see https://admin:hunter2@internal.example.org/db.", "https://admin:hunter2@internal.example.org/db"),
]
CLEAN = [
    "order 4111 1111 1111 1112 failed (bad Luhn)",
    "tracking number 4111111111111112",
    "IBAN GB83 WEST 1234 5698 7654 32 (bad check digits)",
    "IBAN DE89 3704 0044 0532 0130 01 has a typo",
    "shipped on 2024-01-15 for 12.50 euros",
    "due 15/01/2024, or 05.06.2023 10.30 at the latest",
    "version 3.2.1 is out, build 10.0.19041.1 and v1.2.3.4.5",
    "address 999.1.1.1 is not an IP, nor is 256.1.1.1",
    "SSN 000-12-3456 was never issued, 666-12-3456 neither, nor 123-00-4567",
    "NI number AB 12 34 56 E has a bad suffix",
    "reference A1234567 and year 2023",
    "meet at 10:15:30 on Monday",
    "the total was 1,250,000 in 2019, or 1 250 000 euros",
    "years 2019 2020 2021 2022 were good",
    "pi is 3.14159265358979",
    "std::vector and a::b are C++",
    "MAC 00:1A:2B:3C:4D:5E is a device id",
    "ISBN 978-3-16-148410-0",
    "order 1234567890123 is late",
    "mail x@y or user@localhost",
    "price +12.50 after tax",
]


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


# -- PII ------------------------------------------------------------------------------------------


def test_every_planted_kind_is_found_once_with_its_value() -> None:
    hits = privacy.find_pii([text for _, text, _ in PLANTED])
    assert list(hits.columns) == ["row", "entity", "value", "start", "end", "normalized"]
    found = {(r.row, r.entity, r.value) for r in hits.itertuples()}
    assert found == {(i, entity, value) for i, (entity, _, value) in enumerate(PLANTED)}
    assert set(privacy.ENTITIES) - {"person"} <= set(hits["entity"])
    for r in hits.itertuples():
        assert PLANTED[r.row][1][r.start:r.end] == r.value


def test_no_false_positive_on_tricky_clean_rows() -> None:
    hits = privacy.find_pii(CLEAN)
    assert len(hits) == 0, hits[["row", "entity", "value"]].to_string()


def test_normalized_values_compare_across_formats() -> None:
    texts = ["Jane.Doe@Example.COM", "jane.doe@example.com", "+44 20 7946 0958", "+44-20-7946-0958",
             "4111-1111-1111-1111", "4111111111111111", "gb82 is not", "GB82 WEST 1234 5698 7654 32",
             "GB82WEST12345698765432", "2001:DB8:0:0:8A2E:370:7334:1", "2001:db8::8a2e:370:7334:1"]
    norm = privacy.find_pii(texts).set_index("row")["normalized"]
    assert norm[0] == norm[1] == "jane.doe@example.com"
    assert norm[2] == norm[3] == "442079460958"
    assert norm[4] == norm[5] == "4111111111111111"
    assert 6 not in norm.index and norm[7] == norm[8] == "GB82WEST12345698765432"
    assert norm[9] == norm[10] == "2001:db8::8a2e:370:7334:1"


def test_overlaps_keep_one_hit() -> None:
    hits = privacy.find_pii(["card 4111 1111 1111 1111", "https://bob:pw@mail.example.org/x", "a 4111 1111 1111 1112"])
    assert hits[["row", "entity"]].values.tolist() == [[0, "credit_card"], [1, "url_credentials"]]  # no phone, no email


def test_names_need_presidio() -> None:
    section = privacy.privacy_section(["hello"], ["s0"])
    if privacy.presidio_available():
        pytest.skip("Presidio is installed here")
    assert any("Presidio is not installed" in n for n in section.notes)


@pytest.mark.parametrize("digits, ok", [("4111111111111111", True), ("5555555555554444", True),
                                        ("378282246310005", True), ("79927398713", True),
                                        ("4111111111111112", False), ("79927398710", False), ("", False),
                                        ("4111 1111 1111 1111", False)])
def test_luhn(digits: str, ok: bool) -> None:
    assert privacy.luhn_ok(digits) is ok


@pytest.mark.parametrize("iban, ok", [("GB82 WEST 1234 5698 7654 32", True), ("DE89370400440532013000", True),
                                      ("de89 3704 0044 0532 0130 00", True), ("FR1420041010050500013M02606", True),
                                      ("NO9386011117947", True), ("GB82 WEST 1234 5698 7654 33", False),
                                      ("GB28 WEST 1234 5698 7654 32", False), ("DE89370400440532013001", False),
                                      ("XX00", False), ("GB82-WEST-1234", False)])
def test_iban(iban: str, ok: bool) -> None:
    assert privacy.iban_ok(iban) is ok


def test_masked_values_are_recognisable_not_readable() -> None:
    assert privacy.mask("jane.doe@example.com") == "j***@example.com"
    assert privacy.mask("4111 1111 1111 1111", "credit_card") == "**** **** **** 1111"
    assert privacy.mask("GB82 WEST 1234 5698 7654 32", "iban").endswith("54 32")
    assert "hunter2" not in privacy.mask("https://admin:hunter2@host/x") and "@host/x" in privacy.mask(
        "https://admin:hunter2@host/x")
    assert privacy.mask("123-45-6789", "us_ssn") == "***-**-**89"
    assert privacy.mask("Jane Doe", "person") == "J*** D***"
    for entity, _, value in PLANTED:
        masked = privacy.mask(value, entity)
        if entity in ("email", "url_credentials"):
            assert "***" in masked and masked.split("***")[0] == value[:len(masked.split("***")[0])]
        else:  # the same shape, at most 4 letters or digits still visible, and they are the last ones
            visible = [i for i, c in enumerate(masked) if c.isalnum()]
            assert len(masked) == len(value) and 1 <= len(visible) <= 4 and masked[visible[0]:] == value[visible[0]:]


def test_redact_masks_every_hit_and_keeps_the_rest() -> None:
    text = "Mail jane.doe@example.com, card 4111 1111 1111 1111, thanks."
    assert privacy.redact(text) == "Mail j***@example.com, card **** **** **** 1111, thanks."


def test_replay_finds_every_planted_value_with_its_share() -> None:
    source = ["a@x.org and +44 20 7946 0958", "b@x.org", "c@x.org card 4111 1111 1111 1111", "again a@x.org"]
    synthetic = ["hi A@X.org", "nothing here", "card 4111-1111-1111-1111 again", "c@x.org", "new d@x.org"]
    syn, src = privacy.find_pii(synthetic), privacy.find_pii(source)
    by_entity = privacy.pii_replay(syn, src).set_index("entity")
    assert by_entity["source_values"].to_dict() == {"credit_card": 1, "email": 3, "phone": 1}
    assert by_entity["replayed"].to_dict() == {"credit_card": 1, "email": 2, "phone": 0}
    assert by_entity.loc["email", "share"] == pytest.approx(2 / 3) and by_entity.loc["phone", "share"] == 0.0
    values = privacy.replayed_values(syn, src)
    assert values[["entity", "normalized"]].values.tolist() == [["credit_card", "4111111111111111"],
                                                                ["email", "a@x.org"], ["email", "c@x.org"]]
    assert values["synthetic_rows"].tolist() == [[2], [0], [3]] and values["source_rows"].tolist() == [[2], [0, 3], [2]]


# -- distances ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("block", [3, 4096])
def test_embedding_dcr_equals_brute_force(block: int) -> None:
    rng = np.random.default_rng(0)
    q, r = unit(rng.normal(size=(23, 6))), unit(rng.normal(size=(31, 6)))
    dist, idx = privacy.nearest_embedding(q, r, block=block)
    full = 1 - q.astype(np.float64) @ r.T.astype(np.float64)
    assert np.allclose(dist, full.min(1), atol=1e-5) and (idx == full.argmin(1)).all()
    dist, idx = privacy.nearest_embedding(q, r[:0])
    assert (dist == 1.0).all() and (idx == -1).all()


def _random_texts(rng: random.Random, n: int, vocab: list[str], lo: int, hi: int) -> list[str]:
    return [" ".join(rng.choice(vocab) for _ in range(rng.randint(lo, hi))) for _ in range(n)]


@pytest.mark.parametrize("budget", [7, 1 << 22])
def test_char_dcr_equals_brute_force_jaccard(budget: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(distances, "PAIR_BUDGET", budget)
    rng = random.Random(4)
    rows = _random_texts(rng, 25, ["parcel", "refund", "Late", "box", "the", "a"], 1, 8) + ["", "abc"]
    queries = _random_texts(rng, 20, ["parcel", "REFUND", "late", "box", "zz", "the"], 1, 8)
    queries += ["qqqqqqqq", "", "abc", rows[3].upper()]
    dist, idx = privacy.nearest_chars(queries, rows)
    for q, text in enumerate(queries):
        a = privacy.char_grams(text)
        brute = np.array([1 - len(a & b) / len(a | b) if a | b else 1.0 for b in map(privacy.char_grams, rows)])
        if brute.min() == 1.0:  # no shared 5-gram
            assert dist[q] == 1.0 and idx[q] == -1, q
        else:
            assert dist[q] == brute.min() and idx[q] == int(np.argmin(brute)), q
    assert dist[-1] == 0.0 and idx[-1] == 3 and dist[-4] == 1.0 and idx[-4] == -1
    assert privacy.char_grams("  The  Box ") == {"the b", "he bo", "e box"} and privacy.char_grams("ab") == {"ab"}


def _brute_span(query: str, rows: list[str]) -> int:
    a = tokenize(query)
    best = 0
    for row in rows:
        b = tokenize(row)
        prev = [0] * (len(b) + 1)
        for i in range(1, len(a) + 1):
            cur = [0] * (len(b) + 1)
            for j in range(1, len(b) + 1):
                if a[i - 1] == b[j - 1]:
                    cur[j] = prev[j - 1] + 1
                    best = max(best, cur[j])
            prev = cur
    return best


@pytest.mark.parametrize("seed, budget", [(1, 1 << 22), (3, 1 << 22), (3, 5), (8, 1 << 22)])
def test_longest_span_equals_brute_force(seed: int, budget: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(distances, "PAIR_BUDGET", budget)
    rng = random.Random(seed)
    vocab = ["a", "b", "c", "d"]
    rows = _random_texts(rng, 12, vocab, 0, 30)
    queries = _random_texts(rng, 15, vocab, 0, 30) + [" ".join(tokenize(rows[5])[2:14]).upper() + ", x y", "", "z"]
    spans = privacy.longest_spans(queries, rows, seed=seed)
    for q, text in enumerate(queries):
        brute = _brute_span(text, rows)
        expected = brute if brute >= seed else 0
        assert spans["words"][q] == expected, (q, text)
        if expected:
            words = spans["span"][q].split()
            assert len(words) == expected and words == tokenize(text)[spans["start"][q]:spans["start"][q] + expected]
            assert f" {spans['span'][q]} " in f" {' '.join(tokenize(rows[spans['row'][q]]))} "
        else:
            assert spans["row"][q] == -1 and spans["span"][q] == ""


def test_longest_span_picks_the_right_source_row() -> None:
    rows = ["one two three four five six", "alpha beta two three four gamma"]
    spans = privacy.longest_spans(["x two three four five y", "Alpha, BETA two!"], rows, seed=2)
    assert spans[["words", "row", "start"]].values.tolist() == [[4, 0, 1], [3, 1, 0]]
    assert spans["span"].tolist() == ["two three four five", "alpha beta two"]


def test_sdmetrics_dcr_score() -> None:
    rng = np.random.default_rng(1)
    train, holdout = unit(rng.normal(size=(200, 8))), unit(rng.normal(size=(200, 8)))
    copies = train[rng.choice(200, 150)]
    out = privacy.dcr_protection(privacy.nearest_embedding(copies, train)[0],
                                 privacy.nearest_embedding(copies, holdout)[0])
    assert out["closer_to_training"] == 1.0 and out["score"] == 0.0 and out["median_to_training"] < 1e-5
    independent = unit(rng.normal(size=(300, 8)))
    out = privacy.dcr_protection(privacy.nearest_embedding(independent, train)[0],
                                 privacy.nearest_embedding(independent, holdout)[0])
    assert 0.4 < out["closer_to_training"] < 0.6 and out["score"] > 0.8
    # ties count half (SDMetrics counts them as closer to the holdout): tie_weight=0 is SDMetrics exactly
    assert privacy.dcr_protection(np.ones(10), np.ones(10))["closer_to_training"] == 0.5
    assert privacy.dcr_protection(np.ones(10), np.ones(10), tie_weight=0)["score"] == 1.0
    mixed = privacy.dcr_protection(np.r_[np.zeros(8), np.ones(2)], np.full(10, 0.5))
    assert mixed["closer_to_training"] == 0.8 and mixed["score"] == pytest.approx(0.4)
    assert math.isnan(privacy.dcr_protection(np.zeros(0), np.zeros(0))["score"])


def test_membership_inference_is_chance_when_independent_and_high_when_copied() -> None:
    rng = np.random.default_rng(3)
    source, holdout = unit(rng.normal(size=(300, 16))), unit(rng.normal(size=(200, 16)))
    independent = privacy.membership_inference(source, holdout, unit(rng.normal(size=(300, 16))))
    assert abs(independent["auroc"] - 0.5) < 0.1 and independent["accuracy"] < 0.62
    assert independent["pairs"] == 200 and independent["members"] == 300
    copies = unit(source[:250] + 0.01 * rng.normal(size=(250, 16)))
    leaked = privacy.membership_inference(source, holdout, copies)
    assert leaked["auroc"] > 0.8 and leaked["accuracy"] > 0.85 and leaked["precision"] > 0.95
    full = privacy.membership_inference(source, holdout, unit(source + 0.01 * rng.normal(size=(300, 16))))
    assert full["auroc"] > 0.99


def test_membership_auroc_and_accuracy_against_direct_computations() -> None:
    rng = np.random.default_rng(5)
    members, others = rng.random(60) * 0.8, rng.random(40)
    out = privacy.distance_attack(members, others)
    labels = np.r_[np.ones(60), np.zeros(40)]
    assert out["auroc"] == pytest.approx(roc_auc_score(labels, -np.r_[members, others]))
    ties = privacy.distance_attack(np.round(members, 1), np.round(others, 1))
    assert ties["auroc"] == pytest.approx(roc_auc_score(labels, -np.round(np.r_[members, others], 1)))
    # equal group sizes: no subsampling, so the best threshold can be found by trying them all
    m, h = members[:40], others
    out = privacy.distance_attack(m, h)
    accuracy = [((m <= t).sum() + (h > t).sum()) / 80 for t in np.r_[m, h]]
    assert out["accuracy"] == pytest.approx(max(0.5, max(accuracy)))
    t = out["threshold"]
    assert out["precision"] == pytest.approx((m <= t).sum() / ((m <= t).sum() + (h <= t).sum()))
    assert math.isnan(privacy.distance_attack(m, h[:0])["auroc"])


# -- the section --------------------------------------------------------------------------------------

SOURCE = [f"Customer {n} ({n.lower()}@mail.org) wrote that the {w} stopped working after {d} days of use, and the "
          f"replacement they were promised last {m} never arrived at their home"
          for n, w, d, m in zip(["Ana", "Bo", "Cy", "Di"], ["router", "lamp", "watch", "webcam"], [3, 5, 7, 9],
                                ["May", "June", "July", "March"])]
HOLDOUT = [f"Customer {n} ({n.lower()}@mail.org) asked whether the {w} ships abroad" for n, w in
           zip(["Ed", "Flo", "Gus", "Hal"], ["router", "lamp", "watch", "webcam"])]
SYNTHETIC = [SOURCE[1].replace("wrote", "says"), "A customer asked about delivery times to Spain.",
             "Someone wants a refund for a broken charger, call 020 7946 0958."]
KEYS = ["privacy.pii_rows_share", "privacy.pii_replay_rate", "privacy.near_copy_share",
        "privacy.longest_copied_span", "privacy.long_span_share", "privacy.dcr_protection", "privacy.mia_auroc"]


def _section(**kwargs: object):
    return privacy.privacy_section(SYNTHETIC, ["s0", "s1", "s2"], SOURCE, ["c0", "c1", "c2", "c3"],
                                   holdout_texts=HOLDOUT, holdout_ids=["h0", "h1", "h2", "h3"], **kwargs)


def test_section_finds_planted_near_copies_spans_and_replay() -> None:
    section = _section()
    assert [m.key for m in section.metrics] == KEYS and section.name == "privacy"
    copies = section.evidence["near_copies"]
    assert copies[["synthetic_id", "source_id", "matched_by"]].values.tolist() == [["s0", "c1", "characters"]]
    assert copies["char_distance"][0] == pytest.approx(
        privacy.jaccard_distance(privacy.char_grams(SYNTHETIC[0]), privacy.char_grams(SOURCE[1])))
    assert section.metric("privacy.near_copy_share").value == pytest.approx(1 / 3)
    assert section.metric("privacy.pii_rows_share").value == pytest.approx(2 / 3)
    assert section.metric("privacy.pii_replay_rate").value == pytest.approx(1 / 4)
    hits = section.evidence["pii_hits"]
    assert hits[["record_id", "entity", "replayed", "source_ids"]].values.tolist() == [
        ["s0", "email", True, "c1"], ["s2", "phone", False, ""]]
    assert hits["masked"].tolist() == ["b***@mail.org", "*** **** **58"]
    replay = section.evidence["replay_by_entity"].set_index("entity")
    assert replay.loc["email", "source_values"] == 4 and replay.loc["email", "replayed"] == 1
    longest = len(tokenize(SOURCE[1])) - tokenize(SOURCE[1]).index("wrote") - 1
    assert section.metric("privacy.longest_copied_span").value == longest
    assert section.metric("privacy.long_span_share").value == pytest.approx(1 / 3)
    assert section.evidence["spans"][["synthetic_id", "source_id", "words"]].values.tolist() == [["s0", "c1", longest]]
    assert not math.isnan(section.metric("privacy.dcr_protection").value)
    assert not math.isnan(section.metric("privacy.mia_auroc").value)
    assert any("embedding distances were skipped" in n for n in section.notes)
    assert section.metric("privacy.mia_auroc").higher_is_better is False
    assert "0.5 = no leak" in section.metric("privacy.mia_auroc").detail


def test_section_with_vectors_uses_embedding_distances() -> None:
    rng = np.random.default_rng(2)
    source, holdout = unit(rng.normal(size=(4, 8))), unit(rng.normal(size=(4, 8)))
    synthetic = unit(rng.normal(size=(3, 8)))
    synthetic[2] = unit(source[3:4] + 0.001 * rng.normal(size=(1, 8)))[0]  # a paraphrase of c3: close in meaning only
    section = _section(synthetic_vectors=synthetic, source_vectors=source, holdout_vectors=holdout)
    copies = section.evidence["near_copies"].set_index("synthetic_id")
    assert copies.loc["s2", "source_id"] == "c3" and copies.loc["s2", "matched_by"] == "embedding"
    assert copies.loc["s2", "embedding_distance"] < 0.01 and copies.loc["s0", "matched_by"] == "characters"
    assert section.metric("privacy.near_copy_share").value == pytest.approx(2 / 3)
    assert list(section.evidence["dcr"]["distance"]) == ["character-5-gram", "embedding"]
    assert section.evidence["membership"]["distance"][0] == "embedding"
    assert not any("embedding distances were skipped" in n for n in section.notes)
    with pytest.raises(ValueError, match="one row per text"):
        _section(synthetic_vectors=synthetic[:2], source_vectors=source)


def test_section_without_holdout_or_source_says_so() -> None:
    section = privacy.privacy_section(SYNTHETIC, ["s0", "s1", "s2"], SOURCE, ["c0", "c1", "c2", "c3"])
    assert [m.key for m in section.metrics] == KEYS
    for key in ("privacy.dcr_protection", "privacy.mia_auroc"):
        assert math.isnan(section.metric(key).value) and "holdout" in section.metric(key).detail
    assert not math.isnan(section.metric("privacy.near_copy_share").value)
    assert any("holdout" in n for n in section.notes)

    alone = privacy.privacy_section(["mail me at a@b.org", "nothing"], ["s0", "s1"], holdout_texts=HOLDOUT)
    assert [m.key for m in alone.metrics] == KEYS
    assert alone.metric("privacy.pii_rows_share").value == 0.5
    for key in KEYS[1:]:
        assert math.isnan(alone.metric(key).value) and "source" in alone.metric(key).detail
    assert any("source" in n for n in alone.notes)
    assert isinstance(alone.evidence["pii_hits"], pd.DataFrame) and alone.evidence["pii_hits"]["masked"].tolist() == [
        "a***@b.org"]
    empty = privacy.privacy_section([], [], [], [])
    assert math.isnan(empty.metric("privacy.pii_rows_share").value)
