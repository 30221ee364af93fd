#!/usr/bin/env bash
# Rootful podman for ptb's podman tests: Debian 12's podman (4.3), the
# Docker test image loaded from Docker (`docker save | podman load`, no
# registry), and podman's Docker-compatible API on a socket
# (/run/ptb-podman/podman.sock), which ptb drives exactly as it drives
# Docker (DOCKER_HOST=unix:///run/ptb-podman/podman.sock).
# Idempotent; `scripts/podman/stop.sh` stops the API service. Needs root
# and scripts/docker/ci-setup.sh (the test image) first.
set -euo pipefail
sock_dir=/run/ptb-podman
sock=$sock_dir/podman.sock
pidfile=$sock_dir/service.pid
image=ptb-test/busybox:1

if ! command -v podman >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "podman=4.3.*" || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "podman=4.3.*"; }
fi

# The same image (same id) as Docker's: ptb pins stages to the image id.
if [ "$(podman image inspect --format '{{.Id}}' "$image" 2>/dev/null)" != "$(docker image inspect --format '{{.Id}}' "$image" | sed 's/^sha256://')" ]; then
  docker save "$image" | podman load -q >/dev/null
fi

# Podman raises every container's open-files and process limits to 2^20;
# root without CAP_SYS_RESOURCE (a machine that is itself a container)
# may not, and every container then fails to start ("error setting rlimit").
# There, containers get the largest limits that start (the engine's
# configuration, as on a cluster node; ptb asks for none).
conf=/etc/containers/containers.conf
if ! podman run --rm --network none "$image" true >/dev/null 2>&1; then
  nofile=$(ulimit -Hn)
  for nproc in $(ulimit -Hu) 65536 32768 16384 4096; do
    if podman run --rm --network none --ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc" "$image" true >/dev/null 2>&1; then
      printf '# Written by ptb scripts/podman/setup.sh: this host cannot raise rlimits.\n[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=%s:%s"]\n' "$nofile" "$nofile" "$nproc" "$nproc" > "$conf"
      break
    fi
  done
  podman run --rm --network none "$image" true || { echo "error: podman cannot start a container here (above)" >&2; exit 1; }
fi

mkdir -p "$sock_dir"
if ! { [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }; then
  rm -f "$sock"
  nohup podman system service --time=0 "unix://$sock" >/var/log/ptb-podman.log 2>&1 &
  echo $! > "$pidfile"
fi
for _ in $(seq 1 100); do [ -S "$sock" ] && curl -fsS --unix-socket "$sock" http://d/_ping >/dev/null 2>&1 && exit 0; sleep 0.1; done
echo "error: podman's API did not come up on $sock; see /var/log/ptb-podman.log" >&2
exit 1
