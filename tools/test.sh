#!/usr/bin/env bash
# The README's test command: install the kit with its dev extras, check the layers contract, run every notebook's
# tests, then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
export MPLBACKEND=Agg PYTHONHASHSEED=0
# data -> model -> method -> training -> views: an import that runs the other way fails here (pyproject.toml)
lint-imports
# notebooks run in parallel and share the quick shapes set: generate it once, before they start
crossmatch data --preset quick --root data > /dev/null
nbdev-test --n-workers 2 --timing
python -m pytest -q tests
