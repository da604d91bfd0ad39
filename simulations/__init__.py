"""Deterministic runs of the real node code: the paper's scenarios, measured.

A discrete-event simulator (``engine``) drives the node's real agents — MIST, WAVES,
TIDE's capacity model, LIGHTHOUSE's membership with signed adverts, the Dispatcher —
over a modelled network with :mod:`islandrun.transports.memory`'s semantics
(``world``), on modelled devices (``devices``), with a workload of real prompt text
(``workload``), the paper's scenarios (``scenarios``), injected faults (``faults``),
the policies compared (``policies``), one run (``run``), its figures (``metrics``),
the comparison and its outputs (``report``) and LIGHTHOUSE at scale
(``convergence``). ``islandnode simulate`` is the command; ``docs/simulation.md``
the results.
"""
