#!/usr/bin/env bash
# The README's test command: install the kit with its dev extras, run every notebook's tests, then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
export MPLBACKEND=Agg PYTHONHASHSEED=0
# notebooks run in parallel and share the quick shapes set: generate it once, before they start
crossmatch data --preset quick --root data > /dev/null
nbdev-test --n-workers 2 --timing
python -m pytest -q tests
