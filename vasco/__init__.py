"""VASCO: vanishing sources in the POSS-I red plates (DSS1).

The science library. It never imports Prefect; ``tasks/`` and ``flows/``
wrap it for orchestration.
"""

__version__ = "0.2.0"
