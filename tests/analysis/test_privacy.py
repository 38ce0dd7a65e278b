"""Privacy checks: planted PII and near-copies found, clean rows left alone, distances against brute force."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from analysis import privacy

PLANTED = {
    "email": "write to Jane.Doe@Example.com today",
    "phone": "call +44 20 7946 0958 after six",
    "credit_card": "card 4111 1111 1111 1111 was charged",
    "iban": "refund to GB82 WEST 1234 5698 7654 32 please",
    "us_ssn": "my SSN is 123-45-6789",
    "uk_nino": "NI number AB 12 34 56 C",
    "ipv4": "logged in from 192.168.10.20",
    "ipv6": "and from 2001:db8::8a2e:370:7334",
    "url_credentials": "see https://admin:hunter2@internal.example.org/db",
}
CLEAN = ["order 4111 1111 1111 1112 failed (bad Luhn)", "IBAN GB83 WEST 1234 5698 7654 32 (bad check digits)",
         "shipped on 2024-01-15 for 12.50 euros", "version 3.2.1 is out", "address 999.1.1.1 is not an IP",
         "SSN 000-12-3456 was never issued", "reference A1234567 and year 2023", "meet at 10:15:30 on Monday",
         "the total was 1,250,000 in 2019"]


def test_every_planted_kind_is_found_and_no_clean_row_is_flagged() -> None:
    hits = privacy.find_pii(list(PLANTED.values()))
    assert dict(zip(hits["row"], hits["entity"])) == dict(enumerate(PLANTED))
    assert privacy.find_pii(CLEAN).empty, privacy.find_pii(CLEAN)
    assert hits.set_index("entity").loc["email", "normalized"] == "jane.doe@example.com"


@pytest.mark.parametrize("digits, ok", [("4111111111111111", True), ("5555555555554444", True),
                                        ("4111111111111112", False), ("79927398713", True)])
def test_luhn(digits: str, ok: bool) -> None:
    assert privacy.luhn_ok(digits) is ok


@pytest.mark.parametrize("iban, ok", [("GB82 WEST 1234 5698 7654 32", True), ("DE89370400440532013000", True),
                                      ("GB82 WEST 1234 5698 7654 33", False), ("XX00", False)])
def test_iban(iban: str, ok: bool) -> None:
    assert privacy.iban_ok(iban) is ok


def test_masked_values_are_not_readable() -> None:
    assert privacy.mask("jane.doe@example.com") == "j***@example.com"
    assert privacy.mask("4111111111111111").endswith("1111") and "4111111" not in privacy.mask("4111111111111111")
    assert "hunter2" not in privacy.mask("https://admin:hunter2@host/x")


def test_replay_finds_every_planted_value_with_its_share() -> None:
    source = ["a@x.org and +44 20 7946 0958", "b@x.org", "c@x.org card 4111 1111 1111 1111"]
    synthetic = ["hi A@X.org", "nothing here", "card 4111-1111-1111-1111 again", "c@x.org"]
    by_entity, replayed = privacy.pii_replay(privacy.find_pii(synthetic), privacy.find_pii(source))
    shares = by_entity.set_index("entity")["share"]
    assert shares["email"] == pytest.approx(2 / 3) and shares["credit_card"] == 1.0 and shares["phone"] == 0.0
    assert len(replayed) == 3


def test_embedding_dcr_equals_brute_force() -> None:
    rng = np.random.default_rng(0)
    q = rng.normal(size=(20, 6))
    r = rng.normal(size=(30, 6))
    q, r = (x / np.linalg.norm(x, axis=1, keepdims=True) for x in (q, r))
    dist, idx = privacy.nearest_embedding(q, r)
    full = 1 - q @ r.T
    assert np.allclose(dist, full.min(1), atol=1e-5) and (idx == full.argmin(1)).all()


def test_char_dcr_equals_brute_force_jaccard() -> None:
    rows = ["the parcel never arrived", "my password reset fails", "refund the double charge"]
    queries = ["the parcel never arrived!", "password reset fails for me", "zzzz"]
    dist, idx = privacy.nearest_chars(queries, rows)
    for q, text in enumerate(queries[:2]):
        a = privacy.char_grams(text)
        brute = [1 - len(a & privacy.char_grams(r)) / len(a | privacy.char_grams(r)) for r in rows]
        assert dist[q] == pytest.approx(min(brute)) and idx[q] == int(np.argmin(brute))
    assert dist[2] == 1.0 and idx[2] == -1


def test_longest_span_equals_brute_force() -> None:
    rows = ["one two three four five six", "alpha beta two three four gamma"]
    got = privacy.longest_span("x two three four five y", rows, [0, 1])
    assert got[:2] == (4, 0) and got[2] == "two three four five"


def test_sdmetrics_dcr_score() -> None:
    assert privacy.dcr_protection(np.zeros(10), np.ones(10)) == (1.0, 0.0)  # copies of the training rows
    assert privacy.dcr_protection(np.ones(10), np.ones(10)) == (0.5, 1.0)  # ties: no closer to either
    assert privacy.dcr_protection(np.r_[np.zeros(3), np.ones(7)], np.full(10, 0.5))[1] == pytest.approx(1.0)


def test_membership_inference_is_chance_when_independent_and_high_when_copied() -> None:
    rng = np.random.default_rng(3)
    same = privacy.membership_inference(rng.random(200), rng.random(200))
    assert abs(same["auroc"] - 0.5) < 0.1
    leaked = privacy.membership_inference(rng.random(200) * 0.1, rng.random(200))
    assert leaked["auroc"] > 0.9 and leaked["accuracy"] > 0.8
    s, h = rng.random(50), rng.random(50)
    labels = np.r_[np.ones(50), np.zeros(50)]
    assert privacy.membership_inference(s, h)["auroc"] == pytest.approx(roc_auc_score(labels, -np.r_[s, h]))


def test_section_finds_planted_near_copies_and_replay() -> None:
    source = [f"Customer {n} ({n.lower()}@mail.org) wrote that the {w} stopped working after {d} days of use"
              for n, w, d in zip(["Ana", "Bo", "Cy", "Di"], ["router", "lamp", "watch", "webcam"], [3, 5, 7, 9])]
    holdout = [f"Customer {n} ({n.lower()}@mail.org) asked whether the {w} ships abroad" for n, w in
               zip(["Ed", "Flo", "Gus", "Hal"], ["router", "lamp", "watch", "webcam"])]
    synthetic = [source[1].replace("wrote", "says"), "A customer asked about delivery times to Spain.",
                 "Someone wants a refund for a broken charger."]
    section = privacy.privacy_section(synthetic, ["s0", "s1", "s2"], source, ["c0", "c1", "c2", "c3"],
                                      holdout_texts=holdout, holdout_ids=["h0", "h1", "h2", "h3"])
    copies = section.evidence["near_copies"]
    assert list(copies["synthetic_id"]) == ["s0"] and list(copies["source_id"]) == ["c1"]
    assert section.metric("privacy.near_copy_share").value == pytest.approx(1 / 3)
    assert section.metric("privacy.pii_replay_rate").value == pytest.approx(1 / 4)
    hits = section.evidence["pii_hits"]
    assert hits["replayed"].tolist() == [True] and hits["source_ids"].tolist() == ["c1"]
    assert section.metric("privacy.longest_copied_span").value >= 10
    assert not math.isnan(section.metric("privacy.dcr_protection").value)


def test_section_without_source_or_holdout_says_so() -> None:
    section = privacy.privacy_section(["mail me at a@b.org"], ["s0"])
    assert section.metric("privacy.pii_rows_share").value == 1.0
    assert math.isnan(section.metric("privacy.pii_replay_rate").value) and section.notes
    assert isinstance(section.evidence["pii_hits"], pd.DataFrame)


def test_redact_masks_every_hit_and_keeps_the_rest() -> None:
    text = "Mail jane.doe@example.com, card 4111 1111 1111 1111, thanks."
    out = privacy.redact(text)
    assert "jane.doe@example.com" not in out and "4111 1111 1111 1111" not in out
    assert out.startswith("Mail j***@example.com, card ") and out.endswith(", thanks.")
