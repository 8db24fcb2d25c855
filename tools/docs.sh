#!/usr/bin/env bash
# The documentation site: every notebook a page (kept outputs, nothing executed), in the index's layer order,
# an API page, offline search; built by mkdocs in strict mode into site/ (see tools/docs.py). Needs the docs
# extra: pip install -e ".[docs]" (the dev extra includes it).
set -euo pipefail
cd "$(dirname "$0")/.."
export NO_MKDOCS_2_WARNING=1  # mkdocs-material's notice about its successor, on every build
python tools/docs.py "$@"
