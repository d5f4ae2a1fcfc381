#!/usr/bin/env bash
# The exact commands behind benchmarks/results/adapt_* (issue 12, item 4): the seed methods
# re-benchmarked in adapt mode (top blocks of MobileNetV2 trained on cached 160 px feature maps) on
# the built-in demo data, 40 % hidden and single positive. Each step writes its own folder; STEPS
# picks which to run (default: all, in order). On 2 cores the two regimes run side by side as two
# processes with ONE torch thread each (OMP_NUM_THREADS=1): measured on the shared 2-core machine,
# one process with 2 threads trained at 16-71 images/s against 165-272 with 1 thread, because the
# two threads wait for each other at every layer whenever another process takes a core.
#
#   STEPS="h0 s0" benchmarks/run_adapt_bench.sh   # seed 0 of both regimes only
#
#   h0  hide40, seed 0, every method + cleanlab + oracle            -> adapt_hide40
#   s0  single positive, seed 0, every method + cleanlab + oracle   -> adapt_single
#   h12 hide40, seeds 1,2, AN + the best methods of seed 0 + oracle -> adapt_hide40_seeds12
#   s12 single positive, seeds 1,2, the same                        -> adapt_single_seeds12
#   m1  memorisation control (item 3), hide40 seed 0, AN and GR: 3-fold cross-fitting at the default
#       4 epochs, and in-sample at 8 epochs (epoch chosen by val mAP) -> adapt_memo_{folds3,e8}
#   m2  the same at 8 epochs with the scoring epoch chosen by hidden val positives (val_hidden) and
#       by hidden train positives (train_probe)                   -> adapt_memo_e8_{valhidden,probe}
#   g0  GR, seed 0, both regimes, re-run after predictions became float64 (h0 / s0 ran with float32
#       probabilities, which tied GR's top cells at 1.0)         -> adapt_{hide40,single}_gr_f64
#   c   the ceiling: the oracle at 224 px, 8 epochs, seed 0 (caches the 224 px maps first) -> adapt_oracle224
#   The adapt defaults (224 px, 8 epochs), one folder per seed so a stopped run keeps what finished
#   (pooled over seeds with benchmarks/combine_adapt_results.py):
#   d0 d1 d2  hide40, seed N, AN, GR, WAN + the oracle (3-fold)  -> adapt224_hide40_sN
#   dra   hide40, seed 0, CLS, HILL, EM, COMIC, focal            -> adapt224_hide40_rest_a
#   drb   hide40, seed 0, focal margin, SPLC, EM+APL, ASL, cleanlab (3-fold) -> adapt224_hide40_rest_b
#   e0 e1 e2  single positive, seed N, AN, GR, WAN               -> adapt224_single_sN
#   ec    single positive, seeds 0,1,2, CLS                      -> adapt224_single_cls
#   r1 r2 hide40, seed N, the other methods and CLS, one run each -> adapt224_rest/hide40_sN_METHOD
#   q0 q1 q2  single positive, seed N, the other methods            -> adapt224_rest/single_sN_METHOD
#         (REST_METHODS=hill,em picks methods)
#   v0 v1 v2  hide40, seed N, GR with the paper's VOC schedule end (gr_voc) -> adapt224_hide40_grvoc_sN
#   u     SPLC and COMIC with --tune (tau x weight decay chosen on val), hide40, seed 0
#                                                         -> adapt224_tuned/hide40_s0_{splc,comic}
#   t0 t1 t2 / p0 p1 p2  SPLC at the tau val chose (splc_tau07, now SPLC's default), hide40 / single positive,
#         seed N                                          -> adapt224_tuned/{hide40,single}_sN_splc_tau07
#   Run as two processes (one core each), the 3-seed steps first:
#     STEPS="d0 d1 d2 dra" BENCH_CACHE=cacheA benchmarks/run_adapt_bench.sh &
#     STEPS="e0 e1 e2 ec drb" BENCH_CACHE=cacheB benchmarks/run_adapt_bench.sh &
#   then the other seeds of the other methods:
#     STEPS="r1 r2" BENCH_CACHE=cacheA benchmarks/run_adapt_bench.sh &
#     STEPS="q0 q1 q2" BENCH_CACHE=cacheB benchmarks/run_adapt_bench.sh &
#
# Settings: 160 px images (96x10x10 maps, 19,200 B per image), adapt's defaults otherwise (4 epochs,
# in-sample scoring, EMA, map augmentation, model choice on val mAP of the observed labels), cleanlab
# and the oracle out of fold with 3 folds. The two regimes use separate cache copies (BENCH_CACHE_B)
# so the two processes never wait on one DuckDB file.
set -euo pipefail
cd "$(dirname "$0")/.."
LABELFIX=${LABELFIX:-labelfix}
DATA=${BENCH_DATA:-/tmp/benchdemo/data}
CACHE=${BENCH_CACHE:-$DATA/labelfix-bench-cache}
CACHE_B=${BENCH_CACHE_B:-$CACHE}
STEPS=${STEPS:-h0 s0 h12 s12}
BEST=${BEST_METHODS:-an,wan,gr,cls}  # AN + the three best of seed 0 (hide40: wan, gr, cls; single: gr, cls, wan)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
COMMON=(--coco "$DATA/instances_full.json" --images "$DATA/images" --mode adapt --image-size 160 --baseline-folds 3)
D224=(--coco "$DATA/instances_full.json" --images "$DATA/images" --mode adapt --image-size 224 --epochs 8
      --baseline-folds 3 --no-baselines)
MEMO=("${COMMON[@]}" --cache "$CACHE" --hide 0.4 --seeds 0 --methods an,gr --no-baselines)
REST=hill,em,comic,focal,focal_margin,splc,em_apl,asl  # every method but AN, GR, WAN and CLS
ALL=an,wan,focal,asl,hill,focal_margin,splc,em,em_apl,gr,comic,comic_nohtb,cls,cleanlab,oracle

if [ ! -f "$DATA/instances_full.json" ]; then
  $LABELFIX demo-data --out "$DATA" --seed 0 --n-train 3000 --n-val 500 --n-test 1000
fi
for step in $STEPS; do
  case $step in
    h0)  $LABELFIX bench "${COMMON[@]}" --cache "$CACHE" --hide 0.4 --seeds 0 --methods "$ALL" --out benchmarks/results/adapt_hide40 ;;
    s0)  $LABELFIX bench "${COMMON[@]}" --cache "$CACHE_B" --single-positive --seeds 0 --methods "$ALL" --out benchmarks/results/adapt_single ;;
    h12) $LABELFIX bench "${COMMON[@]}" --cache "$CACHE" --hide 0.4 --seeds 1,2 --methods "$BEST,oracle" --no-baselines \
           --out benchmarks/results/adapt_hide40_seeds12 ;;
    s12) $LABELFIX bench "${COMMON[@]}" --cache "$CACHE_B" --single-positive --seeds 1,2 --methods "$BEST,oracle" --no-baselines \
           --out benchmarks/results/adapt_single_seeds12 ;;
    m1)  $LABELFIX bench "${MEMO[@]}" --folds 3 --out benchmarks/results/adapt_memo_folds3
         $LABELFIX bench "${MEMO[@]}" --epochs 8 --out benchmarks/results/adapt_memo_e8 ;;
    m2)  $LABELFIX bench "${MEMO[@]}" --epochs 8 --select train_probe --out benchmarks/results/adapt_memo_e8_probe
         $LABELFIX bench "${MEMO[@]}" --epochs 8 --select val_hidden --out benchmarks/results/adapt_memo_e8_valhidden ;;
    g0)  $LABELFIX bench "${COMMON[@]}" --cache "$CACHE" --hide 0.4 --seeds 0 --methods gr --no-baselines \
           --out benchmarks/results/adapt_hide40_gr_f64
         $LABELFIX bench "${COMMON[@]}" --cache "$CACHE_B" --single-positive --seeds 0 --methods gr --no-baselines \
           --out benchmarks/results/adapt_single_gr_f64 ;;
    c)   $LABELFIX bench --coco "$DATA/instances_full.json" --images "$DATA/images" --mode adapt --image-size 224 \
           --baseline-folds 3 --cache "$CACHE" --hide 0.4 --seeds 0 --methods oracle --no-baselines --epochs 8 \
           --out benchmarks/results/adapt_oracle224 ;;
    d0|d1|d2) $LABELFIX bench "${D224[@]}" --cache "$CACHE" --hide 0.4 --seeds "${step#d}" --methods an,gr,wan,oracle \
           --out "benchmarks/results/adapt224_hide40_s${step#d}" ;;
    dra) $LABELFIX bench "${D224[@]}" --cache "$CACHE" --hide 0.4 --seeds 0 --methods cls,hill,em,comic,focal \
           --out benchmarks/results/adapt224_hide40_rest_a ;;
    drb) $LABELFIX bench "${D224[@]}" --cache "$CACHE_B" --hide 0.4 --seeds 0 \
           --methods focal_margin,splc,em_apl,asl,cleanlab --out benchmarks/results/adapt224_hide40_rest_b ;;
    e0|e1|e2) $LABELFIX bench "${D224[@]}" --cache "$CACHE_B" --single-positive --seeds "${step#e}" --methods an,gr,wan \
           --out "benchmarks/results/adapt224_single_s${step#e}" ;;
    ec)  $LABELFIX bench "${D224[@]}" --cache "$CACHE_B" --single-positive --seeds 0,1,2 --methods cls \
           --out benchmarks/results/adapt224_single_cls ;;
    r1|r2) for m in $(tr , " " <<< "${REST_METHODS:-$REST,cls}"); do  # one folder per method, so a stopped run keeps what finished
             $LABELFIX bench "${D224[@]}" --cache "$CACHE" --hide 0.4 --seeds "${step#r}" --methods "$m" \
               --out "benchmarks/results/adapt224_rest/hide40_s${step#r}_$m"; done ;;
    q0|q1|q2) for m in $(tr , " " <<< "${REST_METHODS:-$REST}"); do
             $LABELFIX bench "${D224[@]}" --cache "$CACHE_B" --single-positive --seeds "${step#q}" --methods "$m" \
               --out "benchmarks/results/adapt224_rest/single_s${step#q}_$m"; done ;;
    v0|v1|v2) $LABELFIX bench "${D224[@]}" --cache "$CACHE" --hide 0.4 --seeds "${step#v}" --methods gr_voc \
           --out "benchmarks/results/adapt224_hide40_grvoc_s${step#v}" ;;
    u)   for m in splc comic; do $LABELFIX bench "${D224[@]}" --cache "$CACHE" --hide 0.4 --seeds 0 --methods "$m" --tune \
           --out "benchmarks/results/adapt224_tuned/hide40_s0_$m"; done ;;
    t0|t1|t2) $LABELFIX bench "${D224[@]}" --cache "$CACHE" --hide 0.4 --seeds "${step#t}" --methods splc_tau07 \
           --out "benchmarks/results/adapt224_tuned/hide40_s${step#t}_splc_tau07" ;;
    p0|p1|p2) $LABELFIX bench "${D224[@]}" --cache "$CACHE_B" --single-positive --seeds "${step#p}" --methods splc_tau07 \
           --out "benchmarks/results/adapt224_tuned/single_s${step#p}_splc_tau07" ;;
    *) echo "unknown step $step (use h0, s0, h12, s12, m1, m2, g0, c, d0-d2, dra, drb, e0-e2, ec, r1, r2, q0-q2, v0-v2, u, t0-t2, p0-p2)" >&2; exit 2 ;;
  esac
done
