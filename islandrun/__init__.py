"""IslandRun: one private AI inference system made of a person's own devices.

The import package maps the repository's top-level folders: ``islandrun.node``
(the agents and the node runtime), ``islandrun.protocol`` (the sans-IO wire
protocol), ``islandrun.transports`` (all I/O to other devices) and
``islandrun.simulations`` (deterministic runs of the real node code).
"""

__version__ = "0.1.0"
