#!/usr/bin/env bash
# Writes shell completions and man pages of scvae, scvae-coordinator and scvae-worker into
# OUT (default: .build/share), laid out like a prefix's share/ folder:
#   OUT/bash-completion/completions/NAME   OUT/zsh/site-functions/_NAME
#   OUT/fish/vendor_completions.d/NAME.fish   OUT/man/man1/NAME.1 (one page per subcommand too)
# Install with e.g. `cp -r OUT/. ~/.local/share/`. Completions come from the release binaries
# (--generate-completion-script); man pages from swift-argument-parser's generate-manual
# plugin, which builds the package (offline, from the checked-out dependency).
# Usage: bash scripts/completions.sh [OUT]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-.build/share}
executables=(scvae scvae-coordinator scvae-worker)

swift build -c release >/dev/null
bin=$(swift build -c release --show-bin-path)
mkdir -p "$out/bash-completion/completions" "$out/zsh/site-functions" "$out/fish/vendor_completions.d" "$out/man/man1"
for name in "${executables[@]}"; do
  "$bin/$name" --generate-completion-script bash > "$out/bash-completion/completions/$name"
  "$bin/$name" --generate-completion-script zsh > "$out/zsh/site-functions/_$name"
  "$bin/$name" --generate-completion-script fish > "$out/fish/vendor_completions.d/$name.fish"
done

# generate-manual writes one folder per executable target under the plugin's work folder.
# A fixed date keeps the pages identical from build to build of the same commit.
date=$(git log -1 --format=%cs 2>/dev/null || date +%F)
swift package plugin generate-manual --multi-page --date "$date" >/dev/null
pages=.build/plugins/GenerateManual/outputs
for name in "${executables[@]}"; do
  found=$(find "$pages" -path "*/$name/*.1" 2>/dev/null | head -n 1)
  if [ -z "$found" ]; then
    echo "completions.sh: generate-manual wrote no page for $name under $pages" >&2
    exit 1
  fi
  cp "$(dirname "$found")"/*.1 "$out/man/man1/"
done
echo "completions and man pages in $out"
