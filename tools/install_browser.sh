#!/usr/bin/env bash
# What tests/test_browser.py needs: Debian's headless Chromium and the `playwright` Python client that drives it.
# playwright's own browser download is never used (it cannot reach its servers): the test points playwright at
# /usr/bin/chromium with `executable_path`. Idempotent: does nothing that is already there. Needs root for apt-get.
set -euo pipefail
if ! command -v chromium > /dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core > /dev/null
fi
python -c "import playwright" 2> /dev/null \
  || python -m pip install --quiet --disable-pip-version-check playwright
chromium --version
python -c "from importlib.metadata import version; print('playwright', version('playwright'))"
