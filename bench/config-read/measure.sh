#!/usr/bin/env bash
# Builds the config-read slice once per approach for wasm32-wasip1 (the filter's release profile)
# and prints each module's size and its size above the floor (`none`). bench/NOTES.md,
# "Config read: candidates", has the figures and what they mean.
set -euo pipefail
cd "$(dirname "$0")"
target=../../target/config-read
cargo test -q --features derive --target-dir "$target/host" >/dev/null
for f in value mini nano current; do cargo test -q --features "$f" --target-dir "$target/host" >/dev/null; done
floor=0
for f in none tree derive current value mini nano; do
  cargo build -q --release --target wasm32-wasip1 --features "$f" --target-dir "$target/$f"
  size=$(stat -c %s "$target/$f/wasm32-wasip1/release/config_read.wasm")
  [ "$f" = none ] && floor=$size
  printf '%-8s %8d bytes  %+8d over none\n' "$f" "$size" $((size - floor))
done
