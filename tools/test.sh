#!/usr/bin/env bash
# The README's test command: install the kit with its dev extras, run every notebook's tests, then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
export MPLBACKEND=Agg PYTHONHASHSEED=0
nbdev-test --n-workers 2 --timing
python -m pytest -q tests
