#!/usr/bin/env bash
# Clean a COCO dataset: find its missing labels, review them, export corrected labels.
#   flows/clean_coco.sh ANNOTATIONS.json IMAGES_DIR [STORE]      (run from the repository root)
# Images should carry a "split" key (train/val/test): suggestions are made for train, thresholds
# are estimated on val. Re-running is safe: ingest and embeddings are reused.
set -euo pipefail
annotations=${1:?usage: clean_coco.sh ANNOTATIONS.json IMAGES_DIR [STORE]}
images=${2:?usage: clean_coco.sh ANNOTATIONS.json IMAGES_DIR [STORE]}
export LABELFIX_DB=${3:-labelfix.duckdb}
labelfix=${LABELFIX:-.venv/bin/labelfix}
$labelfix ingest coco "$annotations" --images "$images"
$labelfix embed
$labelfix train --config "$(dirname "$0")/train_head.toml"
# Validation misses labels too: set EXPECTED_MISSING_RATE (e.g. 0.3) if you know roughly how many, or
# the precision estimate stays a conservative lower bound and few suggestions pass the thresholds.
$labelfix suggest --target-precision 0.9 --expected-missing-rate "${EXPECTED_MISSING_RATE:-0}"
echo "review the suggestions: $labelfix review   (then: $labelfix export coco --out corrected/)"
