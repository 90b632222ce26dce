"""VASCO's Prefect flows: the tile flow, the survey flow and the ``vasco`` command.

Importing this package (which every entry point does before it imports
Prefect) sets two Prefect settings for the temporary local server that a run
without ``PREFECT_API_URL`` starts, unless the environment already sets them:

- ``PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS`` = 300 (Prefect's own
  default is 20 s).  The temporary server's first start on a machine creates
  and migrates its SQLite database (``~/.prefect/prefect.db``); on a cold
  machine with both cores busy that was measured at about 90 s, so a user's
  first run ended in ``Timed out while attempting to connect to ephemeral
  Prefect API server``.  ``scripts/install.sh`` also migrates the database
  ahead of time.
- ``PREFECT_SERVER_ANALYTICS_ENABLED`` = false (these machines are offline).
"""

from __future__ import annotations

import os

#: Prefect settings VASCO applies when the environment does not set them (see the module docstring).
PREFECT_DEFAULTS: dict[str, str] = {
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "300",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
}

for _name, _value in PREFECT_DEFAULTS.items():
    os.environ.setdefault(_name, _value)
