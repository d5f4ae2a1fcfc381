#!/usr/bin/env bash
# The exact commands behind benchmarks/results/demo_{hide40,single}_folds and demo_review_rounds:
# every method in-sample and cross-fitted (K=5) side by side, and simulated review rounds
# (3 rounds, 5% of the unknown train cells each), on the built-in demo data, 3 seeds.
set -euo pipefail
cd "$(dirname "$0")/.."
LABELFIX=${LABELFIX:-labelfix}
DATA=${BENCH_DATA:-/tmp/benchdemo/data}
CACHE=${BENCH_CACHE:-$DATA/labelfix-bench-cache}
if [ ! -f "$DATA/instances_full.json" ]; then
  $LABELFIX demo-data --out "$DATA" --seed 0 --n-train 3000 --n-val 500 --n-test 1000
fi
common=(--coco "$DATA/instances_full.json" --images "$DATA/images" --cache "$CACHE" --seeds 0,1,2 --quiet)
$LABELFIX bench "${common[@]}" --hide 0.4 --methods an,gr,cls,hill,splc,em_apl,comic --review-rounds 3 \
  --review-budget 0.05 --out benchmarks/results/demo_review_rounds
$LABELFIX bench "${common[@]}" --hide 0.4 --methods all --folds 1,5 --out benchmarks/results/demo_hide40_folds
$LABELFIX bench "${common[@]}" --single-positive --methods all --folds 1,5 --out benchmarks/results/demo_single_folds
