#!/usr/bin/env bash
# Installs the native libraries scvae links against (Debian/Ubuntu), then builds the release binaries.
# Idempotent: skips apt-get when every package is already installed.
set -euo pipefail
cd "$(dirname "$0")/.."

# python3-yaml: the test that checks cluster/k8s manifests against the executables' options.
packages=(libzmq3-dev libopenblas-dev libturbojpeg0-dev libpng-dev python3-yaml)
# slurmctld, slurmd, slurm-client, munge: the test that submits cluster/slurm/train.sbatch to a
# one-node Slurm cluster (SlurmTests). It runs only as root, so only a root set-up installs them.
if [ "$(id -u)" -eq 0 ]; then packages+=(slurmctld slurmd slurm-client munge); fi
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  # Installing munge, slurmctld or slurmd (root only) must not start their daemons: the test
  # starts its own, with its own configuration. A policy-rc.d that refuses every start does that
  # for invoke-rc.d and deb-systemd-invoke; one is added for the install only, unless the machine
  # has its own.
  policy=/usr/sbin/policy-rc.d
  if [ "$(id -u)" -eq 0 ] && [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# scvae setup.sh: no daemon starts while packages install.\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  echo "setup: installing ${missing[*]}"
  $sudo_cmd apt-get update -qq
  # env: sudo drops DEBIAN_FRONTEND from the environment otherwise.
  # Lock timeout: another apt-get on the machine is waited for, not failed on.
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null
fi

if [ "${SCVAE_SKIP_BUILD:-0}" != "1" ]; then
  swift build -c release --product scvae
  swift build -c release --product scvae-worker
  swift build -c release --product scvae-coordinator
fi
