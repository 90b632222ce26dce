#!/usr/bin/env bash
# Install what VASCO needs on a Debian (bookworm) machine, as root:
#   - SExtractor and PSFEx (Debian packages source-extractor, psfex),
#     WCSTools (the independent plate-solution check used by the tests),
#     chromium (headless, for the report page tests);
#   - a Python virtual environment in .venv with the exact versions of
#     requirements.lock (a set seen working together), and VASCO itself.
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v source-extractor >/dev/null 2>&1 || need+=(source-extractor)
command -v psfex >/dev/null 2>&1 || need+=(psfex)
command -v xy2sky >/dev/null 2>&1 || need+=(wcstools)
# Headless chromium: the report page tests load the gallery and report pages in it (Playwright, tests/conftest.py).
command -v chromium >/dev/null 2>&1 || need+=(chromium)
PYTHON=${PYTHON:-python3}
command -v "$PYTHON" >/dev/null 2>&1 || need+=(python3)
"$PYTHON" -c "import venv, ensurepip" >/dev/null 2>&1 || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
    echo "install.sh: apt-get install ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.lock
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -e .
# Prefect's local database: a run without PREFECT_API_URL starts a temporary
# Prefect server whose first start creates and migrates ~/.prefect/prefect.db
# (about 90 s on a cold machine with both cores busy, longer than Prefect's
# 20 s start-up limit). Do it now, once; on an existing database this applies
# only the migrations it lacks. Skipped when runs go to a Prefect server of yours.
if [ -z "${PREFECT_API_URL:-}" ]; then
    echo "install.sh: preparing Prefect's local database in ${PREFECT_HOME:-$HOME/.prefect}"
    PREFECT_SERVER_ANALYTICS_ENABLED=false .venv/bin/prefect --no-prompt server database upgrade -y >/dev/null
fi
echo "install.sh: $(source-extractor --version 2>&1 | head -1); $(psfex --version 2>&1 | head -1); Python env in .venv"
