#!/usr/bin/env bash
# Second README command: set up, then run the test suite. .ci/run calls this.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export FIFTYONE_DO_NOT_TRACK=true FIFTYONE_DATABASE_VALIDATION=false
exec .venv/bin/python -m pytest "$@"
