#!/usr/bin/env bash
# Run the finetune throughput benchmark on a GPU machine whose Python has torch but not labelfix's
# other dependencies: install the carried wheels (.whl/, from fetch_wheels.sh) into a scratch folder,
# then run the benchmark from the source tree. Extra arguments go to gpu_throughput.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
site=${LABELFIX_SITE:-/tmp/labelfix-site}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" .whl/*.whl
export PYTHONPATH="$site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
python3 benchmarks/gpu_throughput.py "$@"
