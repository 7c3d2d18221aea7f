#!/usr/bin/env bash
# Install everything into ./.venv, start the services the tests need (a Docker engine
# and ductwork's base image, see scripts/services.sh), run the whole suite, and stop
# what this run started. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[all]" 2>&1 \
  | grep -v "is ignored: it is neither a file nor a directory" || true

.venv/bin/ruff check .
# The layering contract (pyproject.toml [tool.importlinter]): layers, subpackages, no cycles.
.venv/bin/lint-imports --no-cache

# Stop only what this run started, on any exit (an engine started by hand stays up).
export DUCTWORK_SERVICES_OWNER="test.sh:$$"
trap 'bash scripts/services.sh down || true' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
bash scripts/services.sh up

# pytest exits 5 when it collects nothing: that must fail CI, and does (set -e).
.venv/bin/python -m pytest "$@"
