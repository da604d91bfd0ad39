"""The paper's deployment scenarios as device groups and workloads.

What it is: one :class:`Scenario` per deployment the paper describes — the personal
island group (§XI-A Scenario 1), the hiking friends (§I Scenario 2), the legal firm's
data locality (§I Scenario 3 / §III-D Scenario C) and the clinic's 1,000 daily
queries (§I Scenario 4 / §III-D Scenario B: 200 high, 500 moderate, 300 low
sensitivity). A scenario is a *group template* (the devices that pair with each
other, cloud included) and a workload mix; ``--nodes N`` repeats the group until
about N devices exist, each copy an independent household / clinic / firm with its
own requests, which is how 1,000 nodes are simulated.

Numbers are models, stated once here: generation speeds per device class, the
clinic's day compressed into one virtual hour, cloud prices of $0.50 / $1.50 per
million input / output tokens.

What it is not: a fault schedule (:mod:`.faults`) or a policy (:mod:`.policies`).
"""

from __future__ import annotations

from dataclasses import dataclass

from islandrun.node.waves_inputs import IslandKind

from . import workload as w
from .devices import DeviceSpec

PERSONAL, FRIEND, EDGE, CLOUD = (IslandKind.PERSONAL, IslandKind.FRIEND, IslandKind.EDGE,
                                 IslandKind.CLOUD)


def cloud(trust: float = 0.4, latency_s: float = 0.04) -> DeviceSpec:
    """A public LLM API: fast, effectively unbounded, paid, least trusted."""
    return DeviceSpec(name="cloud", kind=CLOUD, trust=trust, privacy=trust, tokens_per_s=120.0,
                      slots=64, queue_limit=256, prefill_tps=4000.0, access_latency_s=latency_s,
                      owner_load=0.0, price_in=0.5, price_out=1.5, models=("llama-8b",))


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    title: str
    group: tuple[DeviceSpec, ...]  # the first non-origin, non-cloud device is the fault victim
    mix: w.Mix
    requests: int  # per group over span_s
    span_s: float  # virtual seconds over which requests arrive

    def groups_for(self, nodes: int | None) -> int:
        """How many copies of the group make about ``nodes`` devices (at least one)."""
        if nodes is None:
            return 1
        return max(1, round(nodes / len(self.group)))


HEALTHCARE = Scenario(
    name="healthcare",
    title="Clinic: 1,000 daily queries (200 high, 500 moderate, 300 low sensitivity)",
    group=(
        DeviceSpec(name="edge-server", kind=EDGE, trust=0.8, privacy=0.8, tokens_per_s=60.0,
                   slots=4, queue_limit=16, prefill_tps=1500.0, owner_load=0.05),
        DeviceSpec(name="workstation", kind=PERSONAL, trust=1.0, privacy=1.0,
                   tokens_per_s=40.0, slots=2, queue_limit=8, prefill_tps=800.0,
                   owner_load=0.1, origin=True),
        cloud(),
    ),
    mix=w.Mix((w.patient_case, w.literature_search, w.health_tip), (200, 500, 300)),
    requests=1000,
    span_s=3600.0,
)

PERSONAL_GROUP = Scenario(
    name="personal",
    title="Personal island group: laptop, phone, TV, home NAS, cloud (XI-A)",
    group=(
        DeviceSpec(name="home-nas", kind=EDGE, trust=0.9, privacy=0.9, tokens_per_s=25.0,
                   slots=2, queue_limit=12, owner_load=0.05),
        DeviceSpec(name="laptop", kind=PERSONAL, trust=1.0, privacy=1.0, tokens_per_s=40.0,
                   slots=2, queue_limit=12, prefill_tps=800.0, owner_load=0.2, origin=True),
        DeviceSpec(name="phone", kind=PERSONAL, trust=1.0, privacy=1.0, tokens_per_s=12.0,
                   slots=1, queue_limit=4, access_latency_s=0.01, battery_pct=70.0,
                   charging=False, drain_pct_per_ktok=0.5, models=("llama-3b",), origin=True),
        DeviceSpec(name="tv", kind=PERSONAL, trust=1.0, privacy=1.0, tokens_per_s=8.0, slots=1,
                   queue_limit=2, models=("llama-3b",)),
        cloud(),
    ),
    mix=w.Mix((w.proprietary_code, w.personal_errand, w.general_code), (40, 35, 25)),
    requests=60,
    span_s=600.0,
)

HIKING = Scenario(
    name="hiking",
    title="Hiking friends: low-battery phone A, full-battery phone B over Bluetooth",
    group=(
        DeviceSpec(name="phone-b", kind=FRIEND, trust=0.7, privacy=0.7, tokens_per_s=12.0,
                   slots=1, queue_limit=6, access_latency_s=0.03, access_loss=0.05,
                   battery_pct=90.0, charging=False, drain_pct_per_ktok=0.8, beacon="ble",
                   origin=True),
        DeviceSpec(name="phone-a", kind=FRIEND, trust=0.7, privacy=0.7, tokens_per_s=12.0,
                   slots=1, queue_limit=6, access_latency_s=0.03, battery_pct=15.0,
                   charging=False, drain_pct_per_ktok=0.8, beacon="ble", origin=True),
        cloud(latency_s=0.15),
    ),
    mix=w.Mix((w.photo_caption, w.scenic_caption), (60, 40)),
    requests=60,
    span_s=900.0,
)

LEGAL = Scenario(
    name="legal",
    title="Law firm: case law index on the firm server (compute to data)",
    group=(
        DeviceSpec(name="firm-server", kind=EDGE, trust=0.9, privacy=0.9, tokens_per_s=60.0,
                   slots=4, queue_limit=16, prefill_tps=1500.0, datasets=("caselaw",)),
        DeviceSpec(name="attorney-laptop", kind=PERSONAL, trust=1.0, privacy=1.0,
                   tokens_per_s=40.0, slots=2, queue_limit=12, prefill_tps=800.0,
                   access_latency_s=0.02, origin=True),
        cloud(trust=0.3),
    ),
    mix=w.Mix((w.client_precedent, w.caselaw_research, w.legal_definition), (40, 35, 25)),
    requests=300,
    span_s=1800.0,
)

SCENARIOS: dict[str, Scenario] = {
    s.name: s for s in (PERSONAL_GROUP, HIKING, LEGAL, HEALTHCARE)
}
