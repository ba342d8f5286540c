#!/usr/bin/env bash
# Packing speed of `scvae pack` on a tar shaped like ILSVRC2012_img_train.tar: an outer tar of
# CLASSES class tars of PER_CLASS JPEGs each (copies of the built-in sample images, 64-80 px,
# renamed), packed at --size 48 with --threads 1 and 2. Prints images/s per thread count and
# checks that both outputs are identical.
#
#   scripts/bench/pack_tar.sh [CLASSES=100] [PER_CLASS=50]
#
# Needs a release build (swift build -c release) and GNU tar.
set -euo pipefail
classes=${1:-100}
per_class=${2:-50}
here=$(cd "$(dirname "$0")/../.." && pwd)
scvae="$(cd "$here" && swift build -c release --show-bin-path)/scvae"
work=$(mktemp -d /tmp/scvae-pack-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

# The built-in sample set (2,000 JPEGs), generated into a private cache by `bench data`.
XDG_CACHE_HOME="$work/cache" "$scvae" bench data --passes 1 >/dev/null
mapfile -t samples < <(find "$work/cache" -name '*.JPEG' | LC_ALL=C sort)

mkdir -p "$work/classes" "$work/root"
n=0
for ((c = 0; c < classes; c++)); do
    class=$(printf 'n%08d' "$c")
    mkdir -p "$work/root/$class"
    for ((i = 0; i < per_class; i++)); do
        cp "${samples[n % ${#samples[@]}]}" "$work/root/$class/${class}_$i.JPEG"
        n=$((n + 1))
    done
    tar --sort=name -cf "$work/classes/$class.tar" -C "$work/root/$class" .
done
tar --sort=name -cf "$work/train.tar" -C "$work/classes" .
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); tar of $classes class tars x $per_class images ($n images, $(($(stat -c %s "$work/train.tar") >> 20)) MiB)"

for threads in 1 2; do
    start=$(date +%s.%N)
    "$scvae" pack --input "$work/train.tar" --out "$work/out-$threads" --size 48 --threads "$threads" --shard-mib 4 >/dev/null 2>&1
    end=$(date +%s.%N)
    awk -v n="$n" -v s="$start" -v e="$end" -v t="$threads" 'BEGIN { printf "threads %d: %.1f s, %.0f images/s\n", t, e - s, n / (e - s) }'
done
if diff -r "$work/out-1" "$work/out-2" >/dev/null; then echo "outputs identical"; else echo "outputs DIFFER"; exit 1; fi
