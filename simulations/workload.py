"""The workload generator: real prompt text with real-looking personal data, and its ground truth.

What it is: for each scenario a mix of request *kinds*; each kind writes a prompt
from a template filled with values drawn from this module's own vocabularies
(names, medical record numbers, dates of birth, diagnoses, medications, addresses,
API keys, GPS positions, client matters...). MIST sees only the text and must find
the values itself; the generator keeps the truth beside it:

* ``secrets``: the exact sensitive substrings it planted, and
* ``required_privacy``: the privacy score an island needs to see them raw (the
  paper's sensitivity classes: high 0.9 — the personal group only; moderate 0.5 —
  private edge or a friend is tolerable; low 0.0 — public cloud is acceptable).

A *privacy violation* (counted by :mod:`islandrun.simulations.world`) is a request
for which at least one planted secret appears verbatim in the text that reached an
island whose privacy (from the owner's pairing record) is below
``required_privacy``. Text that MIST replaced by placeholders is not a violation:
the value did not arrive.

The vocabularies are deliberately not MIST's lexicons (they were written for this
module), so MIST's detection is tested, not mirrored.

What it is not: a model of answer quality, or of when users ask (arrival times are
the scenario's business).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from islandrun.protocol.messages import Tier

HIGH, MODERATE, LOW = 0.9, 0.5, 0.0

FIRST = ("Maria", "James", "Aisha", "Wei", "Olusegun", "Ingrid", "Rahul", "Sofia", "Tomasz",
         "Hannah", "Kenji", "Fatima", "Diego", "Priya", "Liam", "Chloe", "Mateo", "Amara",
         "Noah", "Elena", "Yusuf", "Grace", "Lukas", "Nadia")
LAST = ("Gonzalez", "Okafor", "Lindqvist", "Chen", "Patel", "Kowalski", "Nakamura", "Haddad",
        "Fischer", "Moreau", "Adeyemi", "Novak", "Brennan", "Rossi", "Kaur", "Schmidt",
        "Dubois", "Jensen", "Murphy", "Silva")
CONDITIONS = ("type 2 diabetes", "hypertension", "asthma", "atrial fibrillation",
              "major depressive disorder", "chronic kidney disease", "COPD", "epilepsy",
              "hypothyroidism", "rheumatoid arthritis", "HIV", "heart failure", "migraine",
              "multiple sclerosis", "breast cancer", "bipolar disorder")
MEDICATIONS = ("metformin", "lisinopril", "atorvastatin", "albuterol", "apixaban", "sertraline",
               "levothyroxine", "methotrexate", "insulin glargine", "amlodipine",
               "lamotrigine", "furosemide")
SYMPTOMS = ("chest pain", "shortness of breath", "a persistent cough", "dizziness", "fatigue",
            "a severe headache", "abdominal pain", "palpitations", "joint swelling")
STREETS = ("Maple Avenue", "Harbour Road", "Linden Street", "Quarry Lane", "Elm Court",
           "Victoria Road", "Birch Close")
CITIES = ("Springfield", "Riverton", "Lakewood", "Fairview", "Brookhaven")
COMPANIES = ("Northwind Logistics", "Apex Freight", "Bluewater Holdings", "Crestline Foods",
             "Ironbridge Metals")
TOPICS = ("staying hydrated in hot weather", "improving sleep hygiene", "starting to run",
          "eating more vegetables", "reducing screen time", "stretching at a desk",
          "washing hands properly", "managing everyday stress")
CODE_TASKS = ("list comprehensions", "async generators", "dataclasses", "context managers",
              "type hints", "binary search", "regular expressions")


@dataclass(frozen=True, slots=True)
class Prompt:
    """One prompt's text and its ground truth (never printed: the text holds secrets)."""

    kind: str
    text: str
    secrets: tuple[str, ...]
    required_privacy: float
    tier: Tier
    max_tokens: int
    dataset: str | None = None
    # Documents a router that ignores data locality must upload with the prompt.
    excerpts: str = ""

    def __repr__(self) -> str:
        return f"Prompt(kind={self.kind!r}, chars={len(self.text)}, secrets={len(self.secrets)})"


def _name(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def _date(rng: random.Random) -> str:
    return f"{rng.randint(1, 12):02d}/{rng.randint(1, 28):02d}/{rng.randint(1940, 2005)}"


def _phone(rng: random.Random) -> str:
    return f"({rng.randint(201, 989)}) {rng.randint(200, 999)}-{rng.randint(1000, 9999)}"


def _address(rng: random.Random) -> str:
    return f"{rng.randint(2, 998)} {rng.choice(STREETS)}, {rng.choice(CITIES)}"


def patient_case(rng: random.Random) -> Prompt:
    name, mrn, dob = _name(rng), f"{rng.randint(1000000, 9999999)}", _date(rng)
    condition, med, phone = rng.choice(CONDITIONS), rng.choice(MEDICATIONS), _phone(rng)
    text = (f"Patient {name}, MRN {mrn}, born {dob}, presents with {rng.choice(SYMPTOMS)} for "
            f"{rng.randint(2, 14)} days. History of {condition}; currently takes {med} "
            f"{rng.choice((5, 10, 20, 40))} mg daily. Callback number {phone}. "
            "What is the differential diagnosis and the next step?")
    return Prompt("symptom analysis", text, (name, mrn, dob, condition, phone), HIGH,
                  Tier.PRIMARY, 384)


def literature_search(rng: random.Random) -> Prompt:
    condition, med = rng.choice(CONDITIONS), rng.choice(MEDICATIONS)
    text = (f"For a patient of ours with {condition} who is not responding to {med}, summarise "
            f"the evidence from trials since 2015 and list the main alternatives.")
    return Prompt("literature search", text, (condition,), MODERATE, Tier.SECONDARY, 256)


def health_tip(rng: random.Random) -> Prompt:
    text = f"Give five short, practical tips for {rng.choice(TOPICS)}."
    return Prompt("health tip", text, (), LOW, Tier.BURSTABLE, 128)


def proprietary_code(rng: random.Random) -> Prompt:
    key = "sk_live_" + "".join(rng.choice("abcdefghjkmnpqrstuvwxyz23456789") for _ in range(24))
    email = f"{rng.choice(FIRST).lower()}.{rng.choice(LAST).lower()}@example-corp.com"
    text = (f"Review this function from our internal billing service and find the bug:\n"
            f"def charge(customer):\n    client = Billing(api_key=\"{key}\")\n"
            f"    return client.charge(customer, retries=3)\n"
            f"Send the fix to {email}.")
    return Prompt("proprietary code", text, (key, email), HIGH, Tier.SECONDARY, 320)


def personal_errand(rng: random.Random) -> Prompt:
    name, address, date = _name(rng), _address(rng), _date(rng)
    text = (f"Draft a friendly message to {name} confirming dinner at {address} on {date}, "
            "and ask whether they need a lift.")
    return Prompt("personal message", text, (name, address), MODERATE, Tier.SECONDARY, 160)


def general_code(rng: random.Random) -> Prompt:
    text = f"Explain {rng.choice(CODE_TASKS)} in Python with one short example."
    return Prompt("general question", text, (), LOW, Tier.BURSTABLE, 256)


def photo_caption(rng: random.Random) -> Prompt:
    name = _name(rng)
    lat, lon = f"{rng.uniform(44, 48):.5f}", f"{rng.uniform(6, 12):.5f}"
    text = (f"Enhance photo IMG_{rng.randint(1000, 9999)}.jpg taken at GPS {lat}, {lon} and "
            f"write a caption naming {name}, who took it on {_date(rng)}.")
    return Prompt("photo enhancement", text, (name, lat), MODERATE, Tier.SECONDARY, 192)


def scenic_caption(rng: random.Random) -> Prompt:
    text = rng.choice(("Suggest a caption for a sunset over a mountain ridge.",
                       "Suggest a caption for a foggy alpine lake at dawn.",
                       "Suggest a caption for wildflowers beside a trail."))
    return Prompt("scenic caption", text, (), LOW, Tier.BURSTABLE, 96)


def client_precedent(rng: random.Random) -> Prompt:
    client, matter, company = _name(rng), f"{rng.randint(10, 99)}-{rng.randint(1000, 9999)}", \
        rng.choice(COMPANIES)
    text = (f"Using our case law index, find precedent for our client {client} (matter "
            f"{matter}) in the late-delivery dispute with {company}.")
    excerpts = (f"\n\nPrivileged memo: {client} admitted the shipment to {company} left "
                f"{rng.randint(3, 30)} days late; settlement floor discussed with counsel.")
    return Prompt("client precedent", text, (client, matter, company), 0.8, Tier.SECONDARY,
                  320, dataset="caselaw", excerpts=excerpts)


def caselaw_research(rng: random.Random) -> Prompt:
    company = rng.choice(COMPANIES)
    text = "Search our case law index for rulings on force majeure in supply contracts."
    excerpts = f"\n\nInternal brief excerpt: our prior settlement with {company} (sealed)."
    return Prompt("case law research", text, (), 0.8, Tier.SECONDARY, 256,
                  dataset="caselaw", excerpts=excerpts)


def legal_definition(rng: random.Random) -> Prompt:
    term = rng.choice(("force majeure", "consideration", "estoppel", "liquidated damages"))
    return Prompt("legal definition", f"Explain what {term} means in contract law.", (), LOW,
                  Tier.BURSTABLE, 160)


Maker = Callable[[random.Random], Prompt]


@dataclass(frozen=True, slots=True)
class Mix:
    """Request kinds and how many of each out of ``sum(counts)`` requests."""

    makers: tuple[Maker, ...]
    counts: tuple[int, ...]

    def draw(self, rng: random.Random, total: int) -> list[Prompt]:
        """``total`` prompts in the mix's proportions, in a shuffled order."""
        whole = sum(self.counts)
        prompts: list[Prompt] = []
        for maker, count in zip(self.makers, self.counts, strict=True):
            prompts += [maker(rng) for _ in range(round(total * count / whole))]
        rng.shuffle(prompts)
        return prompts


def leaked(text: str, secrets: Sequence[str]) -> bool:
    """Whether any planted secret appears verbatim in ``text``."""
    return any(secret in text for secret in secrets)
