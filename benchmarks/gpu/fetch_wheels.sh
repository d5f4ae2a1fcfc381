#!/usr/bin/env bash
# Fetch the wheels labelfix needs beyond what a GPU machine's stock Python (3.12, torch, torchvision,
# numpy, pandas, pyarrow, tqdm) already holds, into .whl/ (git-ignored), so that a machine with no
# package index can run benchmarks/gpu_throughput.py. Versions follow requirements.txt.
#
# Here:        bash benchmarks/gpu/fetch_wheels.sh
# There:       bash benchmarks/gpu/run_throughput.sh   (with .whl carried along)
set -euo pipefail
cd "$(dirname "$0")/../.."
pin() { grep -iE "^$1==" requirements.txt requirements-dev.txt | head -1 | cut -d: -f2; }
wanted=(
  "$(pin duckdb)" "$(pin pydantic)"
  # pydantic's own needs, at the versions the project's venv resolved
  pydantic_core==2.50.4 annotated-types==0.8.0 typing-inspection==0.4.5 typing_extensions==4.16.0
)
rm -rf .whl && mkdir -p .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "${wanted[@]}"
ls -1 .whl
du -sh .whl
