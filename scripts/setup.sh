#!/usr/bin/env bash
# Installs the native libraries scvae links against (Debian/Ubuntu), then builds the release binaries.
# Idempotent: skips apt-get when every package is already installed.
set -euo pipefail
cd "$(dirname "$0")/.."

# SCVAE_SETUP_TESTS=0 installs what the build needs and nothing else (the Containerfile's
# builder stage); SCVAE_SWIFT_BUILD_FLAGS adds flags to `swift build` (e.g. --static-swift-stdlib).
setup_tests="${SCVAE_SETUP_TESTS:-1}"
read -ra swift_build_flags <<< "${SCVAE_SWIFT_BUILD_FLAGS:-}"

# The libraries scvae links against. The Containerfile's runtime stage installs their runtime
# packages; cluster/check_containerfile.py checks that the two lists match.
build_packages=(libzmq3-dev libopenblas-dev libturbojpeg0-dev libpng-dev)
# python3-yaml, python3-venv: the test that checks cluster/k8s manifests against the executables'
# options and the Kubernetes API schema (kubernetes-validate, in a virtual environment below).
# chromium: the test that renders `scvae report`'s page in a real browser (headless).
test_packages=(python3-yaml python3-venv chromium)
# slurmctld, slurmd, slurm-client, munge: the test that submits cluster/slurm/train.sbatch to a
# one-node Slurm cluster (SlurmTests). It runs only as root, so only a root set-up installs them.
if [ "$(id -u)" -eq 0 ]; then test_packages+=(slurmctld slurmd slurm-client munge); fi
packages=("${build_packages[@]}")
if [ "$setup_tests" != "0" ]; then packages+=("${test_packages[@]}"); fi
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

# kubernetes-validate (the Kubernetes API schemas, bundled: it works offline) for the manifest
# test, and TensorBoard (its own event reader checks our event files), pinned, in a virtual
# environment of its own: Debian's python3 refuses pip installs.
# ClusterManifestTests runs cluster/check_manifests.py with this environment's python3.
if [ "$setup_tests" != "0" ]; then
  tools=.build/python-tools
  if ! "$tools/bin/python3" -c 'import kubernetes_validate, yaml, tensorboard' >/dev/null 2>&1; then
    echo "setup: installing kubernetes-validate and tensorboard into $tools"
    rm -rf "$tools"
    python3 -m venv "$tools"
    "$tools/bin/python3" -m pip install -q kubernetes-validate==1.37.0 pyyaml tensorboard==2.21.0
  fi
fi

if [ "${SCVAE_SKIP_BUILD:-0}" != "1" ]; then
  for product in scvae scvae-worker scvae-coordinator; do
    swift build -c release "${swift_build_flags[@]}" --product "$product"
  done
fi
