#!/usr/bin/env bash
# The whole test suite, as CI runs it: the fast tests and those marked `slow`
# (SExtractor/PSFEx on whole tiles, a real Prefect server with workers, S3).
# ruff (lint and format) and mypy run first. Plain `.venv/bin/python -m pytest` runs the fast tests only.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -x -k s3`).
set -euo pipefail
cd "$(dirname "$0")/.."
# The fault-injection tests write their table of faults, expected and observed
# behaviour to docs/faults.md (only when the whole fault suite ran).
export VASCO_FAULT_REPORT="${VASCO_FAULT_REPORT:-docs/faults.md}"
# Lint, format and types first (configured in pyproject.toml): a failure stops here.
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
exec .venv/bin/python -m pytest -m "slow or not slow" "$@"
