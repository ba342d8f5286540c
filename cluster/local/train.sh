#!/usr/bin/env bash
# One machine: the coordinator starts the workers itself (--local). Extra arguments pass through.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/setup.sh
workers="${WORKERS:-2}"
exec .build/release/scvae-coordinator --local --workers "$workers" "$@"
