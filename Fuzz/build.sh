#!/usr/bin/env bash
# Builds the libFuzzer binary for the frame and message decoders: .build/fuzz/frame-fuzz
# Run from the repository root:  bash Fuzz/build.sh
set -euo pipefail
out=.build/fuzz
mkdir -p "$out"
clang -O1 -g -fsanitize=fuzzer-no-link,address -c Sources/CCRC32C/crc32c.c \
    -I Sources/CCRC32C/include -o "$out/crc32c.o"
swiftc -sanitize=fuzzer,address -parse-as-library -O -g \
    -module-name FrameFuzz \
    -I Fuzz/FrameFuzz/CCRC32C -I Sources/CZmq \
    Sources/Wire/*.swift Sources/Wire/Messages/*.swift Sources/Wire/Zmq/*.swift Sources/Wire/Ring/*.swift \
    Fuzz/FrameFuzz/FrameFuzz.swift \
    "$out/crc32c.o" \
    -use-ld=lld -o "$out/frame-fuzz"
echo "built $out/frame-fuzz"

# Seeds: one valid frame and one payload per message kind (regenerates Fuzz/FrameFuzz/seeds).
clang -O1 -c Sources/CCRC32C/crc32c.c -I Sources/CCRC32C/include -o "$out/crc32c-plain.o"
swiftc -parse-as-library -O -module-name SeedCorpus -I Fuzz/FrameFuzz/CCRC32C \
    Sources/Wire/ByteIO.swift Sources/Wire/DecodeError.swift Sources/Wire/Frame.swift Sources/Wire/CRC32C.swift \
    Sources/Wire/Messages/*.swift Fuzz/SeedCorpus/SeedCorpus.swift "$out/crc32c-plain.o" -o "$out/seed-corpus"
mkdir -p Fuzz/FrameFuzz/seeds
"$out/seed-corpus" Fuzz/FrameFuzz/seeds
