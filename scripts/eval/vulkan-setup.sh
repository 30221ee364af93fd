#!/usr/bin/env bash
# Installs lavapipe (Debian's mesa-vulkan-drivers: Vulkan on the CPU) and the Vulkan loader,
# so that tests/eval_gpu.rs can run the engine's GPU code path (burn's ops through cubecl)
# on a machine without a GPU. Needs root (apt). Idempotent.
set -euo pipefail
if [ -f /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ] && ldconfig -p | grep -q 'libvulkan\.so\.1'; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq mesa-vulkan-drivers libvulkan1
