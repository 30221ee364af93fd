#!/usr/bin/env bash
# Container stage overhead vs `docker run --rm IMAGE true`, and concurrency.
# Usage: perf/docker-overhead.sh [ITERATIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
docker image inspect ptb-test/busybox:1 >/dev/null 2>&1 || scripts/build-demo-images.sh
echo "machine: $(nproc) cores, $(docker version --format 'engine {{.Server.Version}}')"
cargo run --quiet -p ptb-exec --example docker_overhead -- "${1:-10}"
