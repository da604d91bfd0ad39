"""The demo's workload and its verdicts: the paper's healthcare scenario, as data.

The paper's Scenario 4 (a healthcare assistant) mixes patient symptom
analysis (high sensitivity: local per HIPAA), medical literature search
(moderate: private edge tolerable) and general health tips (low: public
cloud acceptable). :data:`WORKLOAD` is a small version of that mix, with
fake PII planted in the sensitive prompts (:data:`PLANTED`), plus a request
that names the home server's document index (data locality).

Everything here is pure: :func:`outcome` turns one API answer into a
:class:`Outcome` row, :func:`summary` counts rows per island, and
:func:`privacy_problems` states what must hold -- sensitive requests stayed
on personal islands, and no planted value reached the cloud -- so the demo
prints it and its test asserts it with the same code.

What this is not: a benchmark (the paper's 1,000-query mix is scaled down
to a handful), and it sends nothing itself (``cmd_demo`` does).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from . import mist

#: The dataset the home server indexes, and the documents it holds.
DATASET = "clinic-notes"
DOCUMENTS = {
    "sepsis.md": "Sepsis screening: check lactate and blood cultures within one hour; "
                 "start broad-spectrum antibiotics early. Reassess fluids after 30 ml/kg.",
    "diabetes.md": "Type 2 diabetes follow-up: HbA1c every three months until stable; "
                   "review metformin dose when kidney function falls.",
    "hypertension.md": "Hypertension clinic: repeat blood pressure after five minutes rest; "
                       "ACE inhibitors are first line for most adults under 55.",
}

#: Fake personal data in the sensitive prompts: none of it may reach the cloud.
PLANTED = ("Maria Gonzalez", "03/14/1962", "4839201", "415-555-0134", "maria.g@example.com",
           "Jamal Wright", "88213457", "Priya Natarajan", "45-year-old")


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoRequest:
    """One request of the workload. ``kind`` is the paper's class: sensitive,
    moderate or low; ``tier`` the WAVES tier (paper section IX-B)."""

    kind: str
    prompt: str
    tier: str = "secondary"
    dataset: str | None = None
    #: ``auto`` lets WAVES pick; the cloud's model name asks for the cloud island.
    model: str = "auto"


#: The model only the cloud island offers (``islandnode cloud add ... --model``).
CLOUD_MODEL = "gpt-demo"

WORKLOAD: tuple[DemoRequest, ...] = (
    DemoRequest(kind="sensitive", prompt=(
        "Patient Maria Gonzalez (DOB 03/14/1962, MRN 4839201) reports chest pain; call her at "
        "+1 415-555-0134 or maria.g@example.com. Is metformin safe with her lisinopril?")),
    DemoRequest(kind="sensitive", prompt=(
        "Jamal Wright, MRN 88213457, was admitted on 2026-03-02 with diabetic ketoacidosis. "
        "Suggest a fluid plan.")),
    DemoRequest(kind="sensitive", prompt=(
        "Write a discharge letter for Priya Natarajan about her new insulin dose."),
        model=CLOUD_MODEL),  # asks for the cloud: refused, never downgraded
    DemoRequest(kind="moderate", prompt=(
        "Analyze treatment options for 45-year-old diabetic patient with elevated HbA1c"),
        model=CLOUD_MODEL),
    DemoRequest(kind="moderate", prompt="Literature search: metformin and lactic acidosis in "
                                        "elderly patients", tier="burstable"),
    DemoRequest(kind="moderate", prompt="What does our clinic guideline say about sepsis "
                                        "screening?", dataset=DATASET),
    DemoRequest(kind="low", prompt="What are common diabetes complications?", tier="burstable"),
    DemoRequest(kind="low", prompt="Give me three tips for better sleep", tier="burstable",
                model=CLOUD_MODEL),
    DemoRequest(kind="low", prompt="How much water should an adult drink a day?",
                tier="burstable"),
)

#: The CI form: a sensitive one, the moderate one the cloud takes sanitized, the
#: one naming the server's dataset, and a low one for the cloud.
SHORT: tuple[DemoRequest, ...] = (WORKLOAD[0], WORKLOAD[3], WORKLOAD[5], WORKLOAD[7])

#: Island tiers that may see sensitive data unsanitized (this device or a personal one).
PERSONAL = ("this device", "personal")


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """Where one request ran and why; entity *types and counts*, never values."""

    kind: str
    sensitivity: float
    island: str
    island_tier: str
    reason: str
    sanitized: bool
    entities: str

    def row(self) -> dict[str, Any]:
        return {"kind": self.kind, "sensitivity": self.sensitivity, "island": self.island,
                "tier": self.island_tier, "reason": self.reason, "sanitized": self.sanitized,
                "entities": self.entities}


def entity_counts(prompt: str) -> str:
    """``"1 DATE, 2 PERSON"``: what MIST finds in ``prompt``, by type and count."""
    return ", ".join(f"{r.count} {r.type.value}" for r in mist.analyze(prompt).reasons) or "-"


def island_tier(device_id: str | None, me: str, tiers: dict[str, str]) -> str:
    """The laptop's view of an island: this device, a pairing tier, cloud, or refused."""
    if device_id is None:
        return "refused"
    if device_id == me:
        return "this device"
    if device_id.startswith("cloud:"):
        return "cloud"
    return tiers.get(device_id, "unpaired")


def outcome(request: DemoRequest, answer: dict[str, Any], me: str, tiers: dict[str, str]
            ) -> Outcome:
    """One row from the API's ``islandrun`` object (or its 403 refusal)."""
    info = answer.get("islandrun") or {}
    device_id = info.get("island")
    return Outcome(
        kind=request.kind,
        sensitivity=float(info.get("sensitivity", mist.analyze(request.prompt).sensitivity)),
        island=str(info.get("island_name") or "refused"),
        island_tier=island_tier(device_id, me, tiers),
        reason=str(info.get("reason") or answer.get("error", {}).get("message", "")),
        sanitized=bool(info.get("sanitized")),
        entities=entity_counts(request.prompt),
    )


def summary(outcomes: Iterable[Outcome]) -> list[tuple[str, str, int, int, int]]:
    """Per island: (island, tier, requests, sensitive ones, sanitized ones)."""
    rows: Counter[tuple[str, str, str]] = Counter()
    for o in outcomes:
        rows[(o.island, o.island_tier, "all")] += 1
        rows[(o.island, o.island_tier, "sensitive")] += o.kind == "sensitive"
        rows[(o.island, o.island_tier, "sanitized")] += o.sanitized
    islands = sorted({(i, t) for i, t, _ in rows})
    return [(i, t, rows[(i, t, "all")], rows[(i, t, "sensitive")], rows[(i, t, "sanitized")])
            for i, t in islands]


def privacy_problems(outcomes: Iterable[Outcome], cloud_bodies: Iterable[dict[str, Any]]
                     ) -> list[str]:
    """Everything that broke the demo's promises (empty: none)."""
    problems = [f"a sensitive request ran on {o.island} ({o.island_tier})"
                for o in outcomes if o.kind == "sensitive" and o.island_tier not in PERSONAL
                and o.island_tier != "refused"]
    sent = "\n".join(json.dumps(body) for body in cloud_bodies)
    problems += [f"a planted {kind} reached the cloud" for kind, value in _planted_kinds()
                 if value in sent]
    return problems


def _planted_kinds() -> list[tuple[str, str]]:
    """Each planted value with a label that is not the value itself."""
    return [(f"value #{i + 1}", value) for i, value in enumerate(PLANTED)]
