"""The scorecard half of the demo: four synthetic versions of support tickets, each with a known problem.

Everything is generated here from fixed seeds (no network, no real person):

* ``support-real@v1`` (reference) — 240 real-style support tickets, six topics in
  equal shares, customers of every gender;
* ``crm-private@v1`` (source) — 200 private CRM tickets with fake identities
  (name, e-mail, phone, card, IBAN); the generator "saw" these;
* ``crm-holdout@v1`` (source) — 200 more of the same population it did not see;
* ``support-synth`` (synthetic), four versions, the history of a data team fixing
  one problem at a time:

  ====  ==========================================================================
  v1    duplicates: 20 % exact copies, 10 % near-copies, and rows with unfilled
        ``{placeholders}``
  v2    deduplicated but skewed: 70 % billing, and customers almost all "he"
  v3    balanced, but it replays the private source: near-copies of CRM tickets
        with their e-mails, phones and cards
  v4    clean
  ====  ==========================================================================

Each version is scanned against HumanEval (nothing to find: support text) and
scored against the reference, the source and the holdout, so the Overview, the
Trends and the gate have something real to show: the gate fails v1-v3 and passes v4.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from pathlib import Path

from synthscope.contamination.scan import config_from, run_scan
from synthscope.core.workspace import DatasetRef, Workspace
from synthscope.datasets.ingest import IngestOptions, ingest
from synthscope.scorecard.report import Inputs, build

Progress = Callable[[int, int, str], None]
SEED = 20261124
ROWS = 240

TOPICS = {
    "billing": {
        "issue": ["I was charged twice for my {plan} subscription this month",
                  "my invoice for {month} shows a fee I never agreed to",
                  "the {plan} plan price went up without any notice",
                  "a refund you promised in {month} never reached my account",
                  "my card was billed after I cancelled the {plan} plan"],
        "detail": ["The amount was {amount} and the reference is {ref}.", "It happened on {day} {month}.",
                   "My account number ends in {digits}.", "I have been a customer for {years} years."],
        "answer": ["I have reversed the duplicate charge of {amount}; it shows within three to five working days.",
                   "I checked the invoice and removed the fee; a corrected invoice is on its way.",
                   "I applied the old {plan} price for the next twelve months as a goodwill gesture.",
                   "The refund was stuck in a manual review; I released it today."],
    },
    "shipping": {
        "issue": ["my parcel with the {product} has been stuck in transit for {days} days",
                  "the tracking page for order {ref} has not changed since {day} {month}",
                  "the courier left my {product} at the wrong address",
                  "I paid for express delivery of the {product} but it came a week late"],
        "detail": ["The order number is {ref}.", "I live in a flat and the buzzer works.",
                   "The box was supposed to arrive before {day} {month}.", "I need it for work by {weekday}."],
        "answer": ["I opened an investigation with the courier and sent a replacement {product} by express.",
                   "The parcel was returned to our depot; it goes out again tomorrow with a new tracking link.",
                   "I refunded the express fee of {amount} and flagged the driver's route.",
                   "Your order {ref} is now marked as priority and should arrive by {weekday}."],
    },
    "returns": {
        "issue": ["I want to return the {product} because it does not fit",
                  "the {product} arrived damaged and I would like to send it back",
                  "the return label for order {ref} does not print",
                  "I returned the {product} {days} days ago and heard nothing since"],
        "detail": ["It is still in its original box.", "The order was placed on {day} {month}.",
                   "The screen has a crack in the corner.", "I would prefer an exchange to a refund."],
        "answer": ["I emailed you a prepaid return label; drop the parcel at any post office.",
                   "Your return arrived at the warehouse and the refund of {amount} is on its way.",
                   "I arranged a free pickup on {weekday} between nine and one.",
                   "An exchange {product} in the right size ships as soon as the return is scanned."],
    },
    "account": {
        "issue": ["I cannot log in to my account since the last update",
                  "the password reset email never arrives",
                  "my two-factor codes are rejected every time",
                  "someone changed the email address on my account"],
        "detail": ["I tried on my phone and on my laptop.", "The error says the session has expired.",
                   "I last logged in successfully on {day} {month}.", "I use the {app} app on {os}."],
        "answer": ["I reset your session tokens; please sign in again and set a new password.",
                   "Our mail provider was delaying resets; I sent a new link that is valid for an hour.",
                   "Your authenticator clock was out of sync; the codes work again after a resync.",
                   "I locked the account, restored your address and logged out every other device."],
    },
    "technical": {
        "issue": ["the {app} app crashes whenever I open the settings",
                  "the {product} stops syncing with my {os} laptop",
                  "the export to spreadsheet produces an empty file",
                  "notifications stopped working after the update to version {version}"],
        "detail": ["I already reinstalled it twice.", "It started on {day} {month}.",
                   "The crash log mentions a missing permission.", "Other apps on the same device work fine."],
        "answer": ["Version {version} has a known bug there; the fix ships on {weekday}, until then turn off "
                   "battery saving.",
                   "Clearing the app cache and signing in again restores the sync.",
                   "The export needs at least one saved filter; I added one to your account.",
                   "Notification permissions were reset by the update; you can re-enable them in settings."],
    },
    "product": {
        "issue": ["does the {product} work with older {os} versions",
                  "what is the difference between the {plan} plan and the premium plan",
                  "can I use the {product} outdoors in the rain",
                  "is there a student discount for the {plan} plan"],
        "detail": ["I am deciding before {day} {month}.", "My current device is about {years} years old.",
                   "I saw conflicting answers on the forum.", "I would buy two of them."],
        "answer": ["The {product} supports {os} from the last three major versions onward.",
                   "The premium plan adds shared folders and priority support; storage is the same.",
                   "It is splash resistant but should not stay in heavy rain.",
                   "Students get thirty percent off the {plan} plan with a valid university email."],
    },
}
SLOTS = {
    "plan": ["basic", "family", "pro", "starter", "business"],
    "month": ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October"],
    "product": ["headphones", "smart speaker", "fitness watch", "e-reader", "router", "webcam", "keyboard",
                "desk lamp", "phone case", "charger"],
    "app": ["mobile", "desktop", "tablet", "web"],
    "os": ["Android", "iOS", "Windows", "macOS", "Linux"],
    "weekday": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"],
}
OPENERS = ["Hello, I am {who}.", "Hi team, I'm {who} and a long-time customer.", "Good morning, I am {who}.",
           "Dear support, I am {who}.", "Hi there, I am {who} writing about my account."]
CUSTOMERS = {"she": ["a mother of two", "a grandmother", "a businesswoman", "a teacher", "a nurse"],
             "he": ["a father of two", "a grandfather", "a businessman", "a teacher", "a nurse"]}
CLOSERS = ["Thanks for your help.", "Please sort this out soon.", "I appreciate a quick answer.", "Kind regards.",
           "Looking forward to hearing from you."]
FIRST = ["Amara", "Lukas", "Sofia", "Kenji", "Priya", "Mateo", "Ingrid", "Tunde", "Chloe", "Rafael", "Leila",
         "Oskar", "Mei", "Dmitri", "Aisha", "Tomasz", "Yara", "Elliot", "Nadia", "Joaquin"]
LAST = ["Okafor", "Lindqvist", "Moreau", "Tanaka", "Raman", "Alvarez", "Haugen", "Adeyemi", "Dubois", "Costa",
        "Haddad", "Nowak", "Chen", "Volkov", "Bello", "Kowalczyk", "Farah", "Whitlock", "Petrova", "Ibarra"]
IBAN_BASES = ["GB{check}NWBK60161331926819", "DE{check}370400440532013000", "FR{check}20041010050500013M02606",
              "NL{check}ABNA0417164300"]


def _fill(template: str, rng: random.Random) -> str:
    values = {k: rng.choice(v) for k, v in SLOTS.items()}
    values |= {"amount": f"{rng.randint(5, 240)}.{rng.randint(0, 99):02d} euros",
               "ref": f"A{rng.randint(10**6, 10**7)}", "day": str(rng.randint(1, 28)),
               "digits": f"{rng.randint(0, 9999):04d}", "years": str(rng.randint(1, 12)),
               "days": str(rng.randint(3, 21)), "version": f"{rng.randint(2, 9)}.{rng.randint(0, 20)}"}
    return template.format(**values)


def ticket(rng: random.Random, topic: str, pronoun: str | None = None) -> dict[str, str]:
    """One support ticket of ``topic``: a customer's message and the agent's answer."""
    t = TOPICS[topic]
    pronoun = pronoun or rng.choice(["she", "he"])
    who = rng.choice(CUSTOMERS[pronoun])
    opener = rng.choice(OPENERS).format(who=who)
    subject = "She" if pronoun == "she" else "He"
    issue = _fill(rng.choice(t["issue"]), rng)
    details = " ".join(_fill(d, rng) for d in rng.sample(t["detail"], 2))
    prompt = (f"{opener} {issue[0].upper() + issue[1:]}. {details} {subject} would like this fixed, as {pronoun} "
              f"said on the phone. {rng.choice(CLOSERS)}")
    answer = " ".join(_fill(a, rng) for a in rng.sample(t["answer"], 2))
    return {"topic": topic, "prompt": prompt, "answer": f"Thank you for reaching out. {answer}"}


def _luhn_digit(digits: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return str((10 - total % 10) % 10)


def _iban(rng: random.Random) -> str:
    base = rng.choice(IBAN_BASES)
    country, bban = base[:2], base[2:].replace("{check}", "")
    bban = bban[:-4] + f"{rng.randint(0, 9999):04d}" if bban[-4:].isdigit() else bban
    numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
    return f"{country}{98 - int(numeric) % 97:02d}{bban}"


def identity(rng: random.Random, n: int) -> dict[str, str]:
    """A fake person: name, e-mail, phone, card (Luhn-valid test range) and IBAN (valid check digits)."""
    first, last = rng.choice(FIRST), rng.choice(LAST)
    card = "4000" + "".join(str(rng.randint(0, 9)) for _ in range(11))
    return {"name": f"{first} {last}", "email": f"{first}.{last}{n}@mailbox-example.org".lower(),
            "phone": f"+44 7700 9{rng.randint(0, 99999):05d}", "card": card + _luhn_digit(card), "iban": _iban(rng)}


def crm_ticket(rng: random.Random, n: int) -> dict[str, str]:
    """A private CRM record: a ticket with the customer's identity written into it."""
    who = identity(rng, n)
    base = ticket(rng, rng.choice(list(TOPICS)))
    prompt = (f"Customer {who['name']} ({who['email']}, phone {who['phone']}) wrote: {base['prompt']} "
              f"Card on file {who['card']}, refunds to IBAN {who['iban']}.")
    return {"topic": base["topic"], "prompt": prompt, "answer": base["answer"], "customer": who["name"]}


def _balanced(rng: random.Random, n: int) -> Iterator[dict[str, str]]:
    topics = list(TOPICS)
    for i in range(n):
        yield ticket(rng, topics[i % len(topics)])


def versions(rng: random.Random, source: list[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    """The four synthetic versions (see the module docstring)."""
    v1 = list(_balanced(rng, int(ROWS * 0.7)))
    v1 += [dict(rng.choice(v1)) for _ in range(int(ROWS * 0.2))]  # exact copies
    for _ in range(ROWS - len(v1) - 6):  # near copies: one closing sentence swapped
        row = dict(rng.choice(v1[: int(ROWS * 0.7)]))
        row["prompt"] = row["prompt"].rsplit(". ", 1)[0] + ". " + rng.choice(CLOSERS)
        v1.append(row)
    v1 += [{"topic": "billing", "prompt": "Hello, {customer_name} here: I was charged twice for {plan_name}.",
            "answer": "Thank you for reaching out. {agent_answer}"} for _ in range(6)]  # template residue
    topics = list(TOPICS)
    v2 = [ticket(rng, "billing" if rng.random() < 0.7 else rng.choice(topics[1:]),
                 "he" if rng.random() < 0.9 else "she") for _ in range(ROWS)]
    v3 = list(_balanced(rng, ROWS - 40))
    for row in rng.sample(source, 40):  # the generator replays private tickets, identities and all
        v3.append({"topic": row["topic"], "prompt": row["prompt"].replace(" wrote: ", " says: ", 1),
                   "answer": row["answer"]})
    v4 = list(_balanced(rng, ROWS))
    for rows in (v1, v2, v3, v4):
        rng.shuffle(rows)
    return {"v1": v1, "v2": v2, "v3": v3, "v4": v4}


def _write(path: Path, rows: list[dict[str, str]], prefix: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"id": f"{prefix}-{i:04d}", **r}, ensure_ascii=False) + "\n"
                            for i, r in enumerate(rows)), encoding="utf-8")
    return path


def build_scorecard_demo(ws: Workspace, progress: Progress | None = None) -> None:
    """Generate, ingest, scan and score the support-ticket datasets."""
    report = progress or (lambda done, total, message: None)
    rng = random.Random(SEED)
    sources = ws.root / "demo" / "sources"
    reference = list(_balanced(rng, ROWS))
    crm = [crm_ticket(rng, n) for n in range(400)]
    private, holdout = crm[:200], crm[200:]
    options = {"prompt_fields": ("prompt",), "answer_fields": ("answer",), "id_field": "id"}
    for name, kind, rows, prefix in (("support-real", "reference", reference, "real"),
                                     ("crm-private", "source", private, "crm"),
                                     ("crm-holdout", "source", holdout, "hold")):
        ingest(ws, _write(sources / f"{name}.jsonl", rows, prefix), name=name, kind=kind, version="v1",
               options=IngestOptions(**options), source_label=f"demo/sources/{name}.jsonl")
    synth = versions(rng, private)
    for version, rows in synth.items():
        ingest(ws, _write(sources / f"support-synth-{version}.jsonl", rows, f"s{version}"), name="support-synth",
               kind="synthetic", version=version, options=IngestOptions(**options),
               source_label=f"demo/sources/support-synth-{version}.jsonl")
    refs = [DatasetRef("support-synth", v) for v in synth]
    report(0, len(refs) + 1, "scanning support-synth against HumanEval")
    run_scan(ws, DatasetRef("humaneval", "v1"), refs, config_from(ws), workers=1)
    inputs = Inputs(DatasetRef("support-real", "v1"), DatasetRef("crm-private", "v1"), DatasetRef("crm-holdout", "v1"))
    for i, ref in enumerate(refs):
        report(1 + i, len(refs) + 1, f"scoring {ref}")
        build(ws, ref, inputs)
