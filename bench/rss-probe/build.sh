#!/usr/bin/env bash
# Builds the probe modules of bench/NOTES.md ("Where the RSS goes") into bench/work/rss-probe/out:
# noop.wasm (no padding), padN.wasm (N exported, never called padding functions) and calledN.wasm
# (the same, each called once at configure), for N in ${PROBE_SIZES:-300 1000}.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work="$here/../work/rss-probe"
mkdir -p "$work/src" "$work/out"
cp "$here/Cargo.toml" "$work/"
build() {  # n, features, output name
  python3 "$here/gen.py" "$1" > "$work/src/lib.rs"
  cargo build -q --release --target wasm32-wasip1 --manifest-path "$work/Cargo.toml" ${2:+--features "$2"}
  cp "$work/target/wasm32-wasip1/release/rss_probe.wasm" "$work/out/$3.wasm"
  echo "$work/out/$3.wasm: $(stat -c %s "$work/out/$3.wasm") bytes"
}
build 0 "" noop
for n in ${PROBE_SIZES:-300 1000}; do
  build "$n" "" "pad$n"
  build "$n" called "called$n"
done
