#!/usr/bin/env bash
# Installs the native libraries scvae links against (Debian/Ubuntu), then builds the release binaries.
# Idempotent: skips apt-get when every package is already installed.
set -euo pipefail
cd "$(dirname "$0")/.."

# python3-yaml: the test that checks cluster/k8s manifests against the executables' options.
packages=(libzmq3-dev libopenblas-dev libturbojpeg0-dev libpng-dev python3-yaml)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ "${SCVAE_SKIP_BUILD:-0}" != "1" ]; then
  swift build -c release --product scvae
  swift build -c release --product scvae-worker
  swift build -c release --product scvae-coordinator
fi
