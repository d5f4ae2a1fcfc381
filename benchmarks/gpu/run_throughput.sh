#!/usr/bin/env bash
# Run the finetune throughput benchmark on a GPU machine straight from the source tree, with that
# machine's own Python: the benchmark needs only torch and torchvision (its imports avoid the store,
# so no duckdb / pydantic; tests/test_gpu_throughput_script.py keeps it so). Arguments go to
# labelfix.bench.speed.gpu_throughput, e.g.  bash benchmarks/gpu/run_throughput.sh --out "$OUT/gpu_throughput.json"
set -euo pipefail
cd "$(dirname "$0")/../.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
python3 -m labelfix.bench.speed.gpu_throughput "$@"
