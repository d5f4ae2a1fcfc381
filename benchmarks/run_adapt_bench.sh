#!/usr/bin/env bash
# The exact commands behind benchmarks/results/adapt_{hide40,single}* (issue 12, item 4): the seed
# methods re-benchmarked in adapt mode (top blocks of MobileNetV2 trained on cached feature maps) on the
# built-in demo data. On a 2-core machine shared with other work, every method at 3 seeds does not fit
# in one sitting, so the runs are split into steps, in the order they were run; each step writes its
# own folder. STEPS picks which to run (default: all, in order):
#
#   benchmarks/run_adapt_bench.sh                 # every step
#   STEPS="a b" benchmarks/run_adapt_bench.sh     # only steps a and b
#
#   a  hide40, seed 0,    an, gr, oracle         -> adapt_hide40
#   b  hide40, seeds 1,2, an, gr, oracle         -> adapt_hide40_seeds12
#   c  hide40, seed 0,    every other method, cleanlab -> adapt_hide40_others
#   d  single positive, seed 0, an, gr           -> adapt_single
#
# Settings: 160 px images (96x10x10 maps, 19,200 B per image: 283 s to cache the 4,500 demo images at a
# load of ~6 on 2 cores; 224 px doubles every cost), adapt's defaults otherwise (4 epochs, in-sample
# scoring, EMA, early stopping on val mAP), the oracle cross-fitted with 3 folds (5 in head mode).
set -euo pipefail
cd "$(dirname "$0")/.."
LABELFIX=${LABELFIX:-labelfix}
DATA=${BENCH_DATA:-/tmp/benchdemo/data}
CACHE=${BENCH_CACHE:-$DATA/labelfix-bench-cache}
STEPS=${STEPS:-a b c d}
COMMON=(--coco "$DATA/instances_full.json" --images "$DATA/images" --cache "$CACHE" --mode adapt --image-size 160
        --baseline-folds 3 --no-baselines)

if [ ! -f "$DATA/instances_full.json" ]; then
  $LABELFIX demo-data --out "$DATA" --seed 0 --n-train 3000 --n-val 500 --n-test 1000
fi
OTHERS=wan,focal,asl,hill,focal_margin,splc,em,em_apl,comic,comic_nohtb,cls,cleanlab
for step in $STEPS; do
  case $step in
    a) $LABELFIX bench "${COMMON[@]}" --hide 0.4 --seeds 0 --methods an,gr,oracle --out benchmarks/results/adapt_hide40 ;;
    b) $LABELFIX bench "${COMMON[@]}" --hide 0.4 --seeds 1,2 --methods an,gr,oracle \
         --out benchmarks/results/adapt_hide40_seeds12 ;;
    c) $LABELFIX bench "${COMMON[@]}" --hide 0.4 --seeds 0 --methods "$OTHERS" --out benchmarks/results/adapt_hide40_others ;;
    d) $LABELFIX bench "${COMMON[@]}" --single-positive --seeds 0 --methods an,gr --out benchmarks/results/adapt_single ;;
    *) echo "unknown step $step (use a, b, c, d)" >&2; exit 2 ;;
  esac
done
