"""``islandnode simulate``: the paper's scenarios, simulated, with every policy compared.

What it is: runs one scenario (``personal``, ``hiking``, ``legal``, ``healthcare``)
under IslandRun, the four baselines and the three ablations — same devices, prompts,
arrivals and faults for each — prints the comparison table, and writes
``figures.json`` plus PNG plots to ``--out``. ``convergence`` instead runs the
LIGHTHOUSE scale experiment (N = 10, 100, 1,000 x 0 / 10 / 50 % loss) beside the
Serf model. Everything is virtual time and seeded: the same ``--seed`` gives the
same figures, byte for byte.

What it is not: a benchmark of this machine (``bench/simulate.py`` times it), and it
needs no node home: it reads and writes nothing but ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console

from islandrun.simulations import convergence
from islandrun.simulations.faults import FAULTS
from islandrun.simulations.report import compare, table, write
from islandrun.simulations.scenarios import SCENARIOS

NAME = "simulate"


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        NAME,
        help="simulate a paper scenario and compare IslandRun with baselines and ablations",
        description=(
            "Run a scenario from the IslandRun paper in a deterministic simulator (virtual "
            "time, the node's real MIST, WAVES, TIDE and LIGHTHOUSE code) under IslandRun, "
            "the baselines (cloud-only, local-only, latency-greedy, privacy-only) and the "
            "ablations (no MIST, no TIDE, no LIGHTHOUSE). Prints the comparison and writes "
            "figures.json and PNG plots. 'convergence' runs the membership scale experiment."
        ),
    )
    parser.add_argument("scenario", choices=[*SCENARIOS, "convergence"], metavar="SCENARIO",
                        help=f"one of: {', '.join([*SCENARIOS, 'convergence'])}")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--nodes", type=int, default=None, metavar="N",
                        help="about N devices: the scenario's group repeated (default: one group)")
    parser.add_argument("--fault", choices=list(FAULTS), default="none",
                        help="fault to inject mid-run (default none)")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="where figures.json and the plots go (default ./simulation-SCENARIO)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    console = Console(width=None if sys.stdout.isatty() else 120)
    out = args.out or Path(f"simulation-{args.scenario}")
    if args.nodes is not None and args.nodes < 1:
        console.print("--nodes must be at least 1")
        return 2
    if args.scenario == "convergence":
        rows = convergence.experiment(seed=args.seed)
        console.print(convergence.table(rows))
        out.mkdir(parents=True, exist_ok=True)
        (out / "convergence.json").write_text(json.dumps(rows, indent=2) + "\n")
        written = [out / "convergence.json", convergence.plot(out, rows)]
    else:
        scenario = SCENARIOS[args.scenario]
        rows = compare(scenario, seed=args.seed, nodes=args.nodes, fault=args.fault)
        title = f"{scenario.title} | fault: {args.fault} | seed {args.seed}"
        console.print(table(title, rows))
        written = write(out, rows)
    for path in written:
        console.print(f"wrote {path}")
    return 0
