#!/usr/bin/env bash
# Stops the podman API service scripts/podman/setup.sh started, by its pid.
set -uo pipefail
f=/run/ptb-podman/service.pid
[ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null
rm -f "$f"
exit 0
