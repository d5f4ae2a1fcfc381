#!/usr/bin/env bash
# First README command: set up, then run the main job on the built-in demo dataset.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export FIFTYONE_DO_NOT_TRACK=true FIFTYONE_DATABASE_VALIDATION=false
exec .venv/bin/labelfix demo "$@"
