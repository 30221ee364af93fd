#!/usr/bin/env bash
# Headless Chromium for tests/report_html.rs (opens `ptb report --html` pages
# in a real browser). Debian's package; idempotent; needs root.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
for i in 1 2 3 4 5 6; do
  if apt-get install -y --no-install-recommends chromium; then exit 0; fi
  # dpkg may be locked by another install: wait and retry (after refreshing lists once).
  [ "$i" = 1 ] && apt-get update || true
  sleep 10
done
echo "chromium-setup: could not install chromium" >&2
exit 1
