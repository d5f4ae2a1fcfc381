#!/usr/bin/env bash
# Second README command: set up, type-check labelfix/ (mypy), then run the test suite and the
# package's doctests. .ci/run calls this.
# Browser tests need Debian's chromium: installed here when apt-get can (root), else those tests skip
# and pytest's summary (-ra) names each skipped test and why.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "test: installing Debian chromium for the browser test"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
    || echo "test: could not install chromium; the browser test will be skipped"
fi
export FIFTYONE_DO_NOT_TRACK=true FIFTYONE_DATABASE_VALIDATION=false
# The type check first (settings in pyproject.toml [tool.mypy]): a few seconds with its cache.
echo "test: mypy labelfix"
.venv/bin/python -m mypy labelfix
exec .venv/bin/python -m pytest "$@"
