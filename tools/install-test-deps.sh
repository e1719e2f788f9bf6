#!/usr/bin/env bash
# What the test suite needs from the host beyond Python packages: a headless Chromium, which opens
# every run's report.html and checks that its figures render without JavaScript errors
# (tests/unit/test_report_browser.py). Installed with apt when run as root; otherwise this says
# what is missing and those tests skip.
set -euo pipefail

have_browser() {
  local name
  for name in chromium chromium-browser google-chrome google-chrome-stable; do
    command -v "$name" >/dev/null 2>&1 && return 0
  done
  return 1
}

if have_browser; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "vsim: no Chromium found and not root with apt: the report's browser tests will be" \
       "skipped (install the chromium package to run them)" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
echo "vsim: installing Chromium for the report's browser tests (apt-get)" >&2
# The browser tests are the only users: a failed install is reported, and they skip.
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null; }
then
  echo "vsim: could not install chromium with apt-get: the report's browser tests will be" \
       "skipped" >&2
  exit 0
fi
chromium --version 2>/dev/null | head -1 >&2 || true
