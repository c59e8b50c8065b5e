#!/usr/bin/env bash
# Builds the probe modules of bench/NOTES.md ("Where the RSS goes") into bench/work/rss-probe/out:
# noop.wasm (no padding), padN.wasm (N exported, never called padding functions) and calledN.wasm
# (the same, each called once at configure), for N in ${PROBE_SIZES:-300 1000}; and pad1000xG, the
# same 1,000 bodies in 1000/G functions, for G in ${PROBE_GROUPS:-10 100}.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work="$here/../work/rss-probe"
mkdir -p "$work/src" "$work/out"
cp "$here/Cargo.toml" "$work/"
build() {  # n, group, features, output name
  python3 "$here/gen.py" "$1" "$2" > "$work/src/lib.rs"
  cargo build -q --release --target wasm32-wasip1 --manifest-path "$work/Cargo.toml" ${3:+--features "$3"}
  cp "$work/target/wasm32-wasip1/release/rss_probe.wasm" "$work/out/$4.wasm"
  echo "$work/out/$4.wasm: $(stat -c %s "$work/out/$4.wasm") bytes"
}
build 0 1 "" noop
for n in ${PROBE_SIZES:-300 1000}; do
  build "$n" 1 "" "pad$n"
  build "$n" 1 called "called$n"
done
# The same 1,000 bodies in fewer, larger functions: 100 of ~9 KB, 10 of ~90 KB (never called).
for g in ${PROBE_GROUPS:-10 100}; do
  build 1000 "$g" "" "pad1000x$g"
done
