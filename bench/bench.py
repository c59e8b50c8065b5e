#!/usr/bin/env python3
"""`make bench`: this filter beside Envoy's native ext_authz and no auth at all, in one run.

Three proxies, each an Envoy with `--concurrency 1` and one listener, differ only in their HTTP
filters: none, the native `envoy.filters.http.ext_authz`, and this module in the Wasm filter. They
share one auth server (`example-auth-server --quiet`, release build) and one backend (a fourth
Envoy answering with `direct_response`). `wrk` drives the same load at each in turn, on 127.0.0.1
only, with fixed connections and duration; rounds are interleaved (every proxy and case once per
round, in a rotating order) so drift on a shared machine hits all three alike. With two CPUs or
more, the proxies get the last CPU and everything else (wrk, auth server, backend) the others
(`--no-pin` turns that off).

Per proxy and case it measures the proxy process's CPU (utime+stime from /proc/PID/stat over the
run) per request, requests per second, p50/p99 latency, RSS after the run and the module's size;
it reports medians over rounds, and ratios (medians of the per-round ratios) to native and to no
auth. Writes `results.md`, `results.json` and, with matplotlib, `results.png` into `--out`.

Standard library only, so the smoke run (`make bench-smoke`) needs nothing but Envoy and wrk.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import growth

ROOT = Path(__file__).resolve().parent.parent
REPORT_LUA = ROOT / "bench" / "wrk" / "report.lua"
CLK_TCK = os.sysconf("SC_CLK_TCK")

# The plugin configuration, and the native filter's, are the same JSON: the same cluster,
# timeout and failure mode.
AUTH_CONFIG = {
    "grpc_service": {"envoy_grpc": {"cluster_name": "ext_authz"}, "timeout": "0.5s"},
    "failure_mode_allow": False,
    "status_on_error": {"code": 403},
    "transport_api_version": "V3",
}


@dataclass
class Case:
    """One kind of request. `expect` is the status each proxy answers with."""

    name: str
    title: str
    headers: list[tuple[str, str]]
    allowed: bool
    body_bytes: int = 0
    # Extra keys merged into both the native and the plugin configuration for this case.
    config: dict = field(default_factory=dict)
    # Extra keys for the plugin's configuration only (this filter's own fields, which native has not).
    wasm_config: dict = field(default_factory=dict)
    # A request header wrk gives a new value on every request (a new cache key each time).
    vary_header: str = ""
    # Extra keys merged into the connection manager of this case's listener, on every proxy.
    hcm: dict = field(default_factory=dict)
    # A case whose feature the filter does not have yet is listed, and skipped with the reason.
    skip: str | None = None

    def expected_status(self, proxy: str) -> int:
        return 200 if proxy == "noauth" or self.allowed else 403


# A handful of headers, as a browser or client library sends (wrk adds Host).
BASE_HEADERS = [
    ("user-agent", "bench/1.0 (wrk)"),
    ("accept", "application/json, text/plain, */*"),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", "en-US,en;q=0.9"),
]
ALLOW = ("x-ext-authz", "allow")

CASES = [
    Case("allowed", "allowed, 6 headers", [ALLOW, *BASE_HEADERS], allowed=True),
    Case(
        "headers50",
        "allowed, 50 headers",
        [ALLOW, *BASE_HEADERS]
        + [(f"x-bench-{i:02}", f"value-{i:02}-0123456789abcdef") for i in range(44)],
        allowed=True,
    ),
    Case("denied", "denied, 6 headers", list(BASE_HEADERS) + [("x-ext-authz", "no")], allowed=False),
    # with_request_body: a 4 KB POST body, buffered and sent to the server by both filters (the
    # plugin also gets `allow_on_headers_stop_iteration`, which reading the body needs).
    Case(
        "body4k",
        "allowed, 4 KB body",
        [ALLOW, *BASE_HEADERS],
        allowed=True,
        body_bytes=4096,
        config={"with_request_body": {"max_request_bytes": 8192, "allow_partial_message": False}},
    ),
    # An auth server that takes the call and never answers: every request waits out the timeout
    # and gets status_on_error (403). The "Slow auth server" section reads its p99.
    Case(
        "slow",
        "auth server slower than the timeout",
        [ALLOW, *BASE_HEADERS],
        allowed=False,
        config={"grpc_service": {"envoy_grpc": {"cluster_name": "ext_authz_slow"}, "timeout": "0.5s"}},
    ),
]
# The decision cache (this filter's own; native has none, so its figure is its usual per-request
# call): one key on every request (all hits after the first), and a new key on every request (all
# misses, each stored).
CACHE = {"decision_cache": {"key": {"headers": ["authorization", "x-bench-key"]}, "ttl": "300s"}}
CASES += [
    Case(
        "cache_hit",
        "allowed, cache hit",
        [ALLOW, *BASE_HEADERS, ("authorization", "Bearer bench"), ("x-bench-key", "one")],
        allowed=True,
        wasm_config=CACHE,
    ),
    Case(
        "cache_miss",
        "allowed, cache miss",
        [ALLOW, *BASE_HEADERS, ("authorization", "Bearer bench")],
        allowed=True,
        wasm_config=CACHE,
        vary_header="x-bench-key",
    ),
]
SLOW_TIMEOUT_MS = 500.0
# p99 of the slow case may exceed the timeout by at most this much.
SLOW_SLACK_MS = 50.0

PROXIES = ["noauth", "native", "wasm"]
PROXY_TITLES = {"noauth": "no auth", "native": "native ext_authz", "wasm": "wasm ext_authz"}

TARGETS = {"cpu_x_native": 1.15, "p99_x_native": 1.10, "rss_over_native_mb": 20.0, "module_kb": 200.0}


# --- processes ---------------------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # The children go when this process goes, however it goes.
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


# With two CPUs or more the proxies get the last one to themselves and everything else (wrk, the
# auth server, the backend) the others, so a proxy is never preempted by its own load.
def cpu_split() -> tuple[set[int], set[int]] | None:
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    return {cpus[-1]}, set(cpus[:-1])


PIN: tuple[set[int], set[int]] | None = None


class Children:
    """Every process the bench starts, stopped by pid at the end."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def start(self, args: list[str], log: Path, cpus: set[int] | None = None) -> subprocess.Popen:
        out = open(log, "wb")

        def setup() -> None:
            _die_with_parent()
            if cpus:
                os.sched_setaffinity(0, cpus)

        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=setup,
        )
        out.close()
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 5
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, ready, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"bench: {what} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if ready():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"bench: {what} not ready after {timeout}s:\n{log.read_text()[-3000:]}")


def http_get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return r.read().decode()


def cpu_ticks(pid: int) -> tuple[int, int]:
    """utime and stime of every thread of `pid`, in clock ticks."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# --- Envoy bootstraps --------------------------------------------------------------------------

ROUTER = {
    "name": "envoy.filters.http.router",
    "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
}
HCM_TYPE = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"


def listener(name: str, route: dict, http_filters: list[dict], hcm: dict | None = None) -> dict:
    return {
        "name": name,
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
        "filter_chains": [
            {
                "filters": [
                    {
                        "name": "envoy.filters.network.http_connection_manager",
                        "typed_config": {
                            "@type": HCM_TYPE,
                            "stat_prefix": name,
                            "codec_type": "AUTO",
                            "route_config": {
                                "virtual_hosts": [
                                    {"name": "all", "domains": ["*"], "routes": [{"match": {"prefix": "/"}, **route}]}
                                ]
                            },
                            "http_filters": [*http_filters, ROUTER],
                            **(hcm or {}),
                        },
                    }
                ]
            }
        ],
    }


def cluster(name: str, port: int, http2: bool) -> dict:
    c = {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [
                {"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}
            ],
        },
    }
    if http2:
        c["typed_extension_protocol_options"] = {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        }
    return c


def auth_filter(proxy: str, config: dict, wasm: Path) -> list[dict]:
    if proxy == "noauth":
        return []
    if proxy == "native":
        return [
            {
                "name": "envoy.filters.http.ext_authz",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
                    **config,
                },
            }
        ]
    return [
        {
            "name": "envoy.filters.http.wasm",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                "config": {
                    "name": "ext_authz",
                    "vm_config": {"runtime": "envoy.wasm.runtime.v8", "code": {"local": {"filename": str(wasm)}}},
                    "configuration": {
                        "@type": "type.googleapis.com/google.protobuf.StringValue",
                        "value": json.dumps(config),
                    },
                    "fail_open": False,
                    # Body callbacks while the headers are held: with_request_body needs them.
                    **({"allow_on_headers_stop_iteration": True} if "with_request_body" in config else {}),
                },
            },
        }
    ]


def silent_server() -> int:
    """A loopback "auth server" that accepts connections and reads them but never writes a byte:
    slower than any timeout. Returns its port; its threads end with the process."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(64)

    def drain(conn: socket.socket) -> None:
        with conn:
            while conn.recv(65536):
                pass

    def accept() -> None:
        while True:
            conn, _ = server.accept()
            threading.Thread(target=drain, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return server.getsockname()[1]


def proxy_bootstrap(proxy: str, cases: list[Case], auth_port: int, backend_port: int, wasm: Path, slow_port: int = 0) -> dict:
    """One listener per case (a case may change the filter config); all share the clusters."""
    listeners = [
        listener(
            f"{proxy}_{case.name}",
            {"route": {"cluster": "backend", "timeout": "10s"}},
            auth_filter(proxy, {**AUTH_CONFIG, **case.config, **(case.wasm_config if proxy == "wasm" else {})}, wasm),
            case.hcm,
        )
        for case in cases
    ]
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {
            "listeners": listeners,
            "clusters": [
                cluster("ext_authz", auth_port, True),
                cluster("ext_authz_slow", slow_port or auth_port, True),
                cluster("backend", backend_port, False),
            ],
        },
    }


def backend_bootstrap() -> dict:
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {
            # The growth series sends 100 extra headers; the proxies add theirs on the way.
            "listeners": [listener("backend", {"direct_response": {"status": 200, "body": {"inline_string": "ok\n"}}}, [],
                                   {"common_http_protocol_options": {"max_headers_count": growth.MAX_HEADERS_COUNT}})]
        },
    }


@dataclass
class Envoy:
    name: str
    proc: subprocess.Popen
    admin_port: int
    ports: dict[str, int]


def start_envoy(children: Children, envoy_bin: str, name: str, bootstrap: dict, work: Path, cpus: set[int] | None,
                concurrency: int = 1, stem: str | None = None) -> Envoy:
    """`name` is the proxy (its listeners are `{name}_{case}`); `stem` names its files in `work`."""
    stem = stem or name
    config = work / f"{stem}.json"
    config.write_text(json.dumps(bootstrap, indent=1))
    admin_path = work / f"{stem}.admin"
    admin_path.unlink(missing_ok=True)
    log = work / f"{stem}.log"
    proc = children.start(
        [
            envoy_bin,
            "-c", str(config),
            "--concurrency", str(concurrency),
            "--disable-hot-restart",
            "--log-level", "warning",
            "--admin-address-path", str(admin_path),
        ],
        log,
        cpus,
    )

    def ready() -> bool:
        if not admin_path.exists():
            return False
        port = int(admin_path.read_text().strip().rsplit(":", 1)[1])
        return http_get(port, "/ready").strip() == "LIVE"

    wait_for(f"envoy {name}", ready, proc, log)
    admin_port = int(admin_path.read_text().strip().rsplit(":", 1)[1])
    statuses = json.loads(http_get(admin_port, "/listeners?format=json"))["listener_statuses"]
    ports = {s["name"]: s["local_address"]["socket_address"]["port_value"] for s in statuses}
    return Envoy(name, proc, admin_port, ports)


# --- load --------------------------------------------------------------------------------------


def one_request(port: int, case: Case) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        body = b"x" * case.body_bytes if case.body_bytes else None
        conn.request("POST" if body else "GET", "/", body=body, headers=dict(case.headers))
        return conn.getresponse().status
    finally:
        conn.close()


def run_wrk(port: int, case: Case, seconds: float, connections: int) -> dict:
    args = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "2s", "-s", str(REPORT_LUA)]
    for k, v in case.headers:
        args += ["-H", f"{k}: {v}"]
    args.append(f"http://127.0.0.1:{port}/")
    env = dict(os.environ, BENCH_BODY_BYTES=str(case.body_bytes), BENCH_VARY_HEADER=case.vary_header)
    load_cpus = PIN[1] if PIN else None
    out = subprocess.run(
        args, capture_output=True, text=True, env=env, timeout=seconds + 60,
        preexec_fn=(lambda: os.sched_setaffinity(0, load_cpus)) if load_cpus else None,
    )
    for line in out.stdout.splitlines():
        if line.startswith("BENCH-JSON "):
            return json.loads(line[len("BENCH-JSON ") :])
    raise SystemExit(f"bench: wrk gave no summary (exit {out.returncode}):\n{out.stdout}\n{out.stderr}")


def measure(envoy: Envoy, auth_pid: int, case: Case, seconds: float, connections: int) -> dict:
    port = envoy.ports[f"{envoy.name}_{case.name}"]
    pid = envoy.proc.pid
    before, auth_before = cpu_ticks(pid), cpu_ticks(auth_pid)
    summary = run_wrk(port, case, seconds, connections)
    after, auth_after = cpu_ticks(pid), cpu_ticks(auth_pid)
    requests = summary["requests"]
    per_request = lambda ticks: ticks * 1e6 / CLK_TCK / requests if requests else float("nan")
    user, system = after[0] - before[0], after[1] - before[1]
    return {
        "requests": requests,
        "rps": requests / (summary["duration_us"] / 1e6),
        "cpu_us_per_req": per_request(user + system),
        "user_us_per_req": per_request(user),
        "sys_us_per_req": per_request(system),
        "auth_cpu_us_per_req": per_request(sum(auth_after) - sum(auth_before)),
        "p50_ms": summary["latency_us"]["p50"] / 1000,
        "p99_ms": summary["latency_us"]["p99"] / 1000,
        "rss_mb": rss_kb(pid) / 1024,
        "errors": summary["errors"],
        "connections": connections,
    }


def problems(proxy: str, case: Case, run: dict) -> list[str]:
    """What makes a run not count: no requests, transport errors, or the wrong answers."""
    out = []
    if run["requests"] == 0:
        return ["no requests completed"]
    e = run["errors"]
    transport = e["connect"] + e["read"] + e["write"] + e["timeout"]
    if transport:
        out.append(f"{transport} connect/read/write/timeout errors")
    non_2xx = e["status"]
    if case.expected_status(proxy) == 200 and non_2xx:
        out.append(f"{non_2xx} of {run['requests']} answers were not 2xx")
    if case.expected_status(proxy) != 200 and non_2xx < run["requests"]:
        out.append(f"{run['requests'] - non_2xx} of {run['requests']} answers were 2xx, expected 403")
    return out


def memory_over_time(proxies: dict, case: Case, seconds: int, connections: int) -> dict:
    """Native and wasm under the same load at once for `seconds`, RSS sampled every second:
    growth is the last sample minus the first (taken after one second of load)."""
    out: dict[str, dict] = {p: {"samples_mb": []} for p in ("native", "wasm")}
    loads = [
        threading.Thread(target=run_wrk, args=(proxies[p].ports[f"{p}_{case.name}"], case, seconds, connections))
        for p in out
    ]
    for load in loads:
        load.start()
    time.sleep(1)
    while any(load.is_alive() for load in loads):
        for p in out:
            out[p]["samples_mb"].append(rss_kb(proxies[p].proc.pid) / 1024)
        time.sleep(1)
    for load in loads:
        load.join()
    for p, m in out.items():
        s = m["samples_mb"] or [float("nan")]
        m.update(first_mb=s[0], last_mb=s[-1], max_mb=max(s), growth_mb=s[-1] - s[0], seconds=seconds)
    return out


def run_growth(children: Children, args, auth_pid: int, auth_port: int, backend_port: int, wasm: Path, work: Path,
               plan: dict) -> tuple[dict, list[str]]:
    """The growth series (growth.py): the header and body points on one set of one-worker proxies,
    then each worker count on proxies of its own, stopped before the next starts."""
    proxy_cpus = PIN[0] if PIN else None
    headline = next(c for c in CASES if c.name == "allowed")
    pts = growth.points(Case, ALLOW, headline, plan)
    runs: dict[tuple[str, int, str], list[dict]] = {(pt.series, pt.x, p): [] for pt in pts for p in PROXIES}
    bad: list[str] = []
    one_worker = [pt for pt in pts if pt.series != "workers"]
    groups = ([(1, one_worker)] if one_worker else []) + [(pt.x, [pt]) for pt in pts if pt.series == "workers"]
    for workers, group in groups:
        cases = [pt.case for pt in group]
        envoys = {
            p: start_envoy(children, args.envoy, p, proxy_bootstrap(p, cases, auth_port, backend_port, wasm), work,
                           proxy_cpus, workers, stem=f"growth-{p}-w{workers}")
            for p in PROXIES
        }
        try:
            # A point that answers wrongly is reported and left out, not allowed to lose the
            # headline results measured before it.
            for p, envoy in envoys.items():
                for pt in list(group):
                    status = one_request(envoy.ports[f"{p}_{pt.case.name}"], pt.case)
                    if status != pt.case.expected_status(p):
                        bad.append(f"growth, {PROXY_TITLES[p]}, {pt.series} {pt.x}: status {status}; not measured")
                        group.remove(pt)
                        for q in PROXIES:
                            runs.pop((pt.series, pt.x, q), None)
                        continue
                    if args.growth_warmup > 0:
                        run_wrk(envoy.ports[f"{p}_{pt.case.name}"], pt.case, args.growth_warmup,
                                growth.connections(pt, args.connections))
            for r in range(args.growth_rounds):
                order = PROXIES[r % len(PROXIES) :] + PROXIES[: r % len(PROXIES)]
                for pt in group:
                    for p in order:
                        run = measure(envoys[p], auth_pid, pt.case, args.growth_seconds,
                                      growth.connections(pt, args.connections))
                        runs[(pt.series, pt.x, p)].append(run)
                        for problem in problems(p, pt.case, run):
                            bad.append(f"growth round {r + 1}, {PROXY_TITLES[p]}, {pt.series} {pt.x}: {problem}")
                        print(f"growth {r + 1}/{args.growth_rounds} {pt.series:7} {pt.x:6} {p:7} "
                              f"{run['cpu_us_per_req']:7.1f} us/req {run['rps']:8.0f} req/s rss {run['rss_mb']:.1f} MB",
                              flush=True)
        finally:
            for envoy in envoys.values():
                envoy.proc.terminate()
                envoy.proc.wait(timeout=10)
    return runs, bad


def extra_sections(summary: dict, memory: dict | None) -> list[str]:
    lines = []
    slow = summary.get("slow")
    if slow:
        limit = SLOW_TIMEOUT_MS + SLOW_SLACK_MS
        lines += [
            "## Slow auth server",
            "",
            f"The auth server takes the call and never answers; the filters' timeout is {SLOW_TIMEOUT_MS:.0f} ms, "
            "so every request gets `status_on_error` (403) when it runs out.",
            "",
            "| Proxy | p50 ms | p99 ms | p99 over timeout ms | Within timeout + 50 ms |",
            "|---|--:|--:|--:|---|",
        ]
        for p in ("native", "wasm"):
            m = slow[p]
            lines.append(
                f"| {PROXY_TITLES[p]} | {m['p50_ms']:.1f} | {m['p99_ms']:.1f} | {m['p99_ms'] - SLOW_TIMEOUT_MS:+.1f} | "
                f"{'yes' if m['p99_ms'] <= limit else '**no**'} |"
            )
        lines.append("")
    if memory:
        seconds = memory["wasm"]["seconds"]
        lines += [
            "## Memory over time",
            "",
            f"Native and wasm under the allowed load at once for {seconds} s; the proxy's RSS sampled every second.",
            "",
            "| Proxy | first MB | last MB | max MB | growth MB |",
            "|---|--:|--:|--:|--:|",
        ]
        for p in ("native", "wasm"):
            m = memory[p]
            lines.append(
                f"| {PROXY_TITLES[p]} | {m['first_mb']:.1f} | {m['last_mb']:.1f} | {m['max_mb']:.1f} | {m['growth_mb']:+.1f} |"
            )
        lines.append("")
    return lines


# --- report ------------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    values = [v for v in values if v == v]
    return statistics.median(values) if values else float("nan")


def summarize(runs: dict, cases: list[Case], rounds: int) -> dict:
    """Medians per proxy and case; ratios as medians of per-round ratios (paired by round)."""
    out = {}
    for case in cases:
        by_proxy = {p: runs[(p, case.name)] for p in PROXIES}
        row = {}
        for p in PROXIES:
            rs = by_proxy[p]
            m = {k: median([r[k] for r in rs]) for k in ("cpu_us_per_req", "auth_cpu_us_per_req", "rps", "p50_ms", "p99_ms", "rss_mb")}
            for base in ("native", "noauth"):
                for k in ("cpu_us_per_req", "rps", "p50_ms", "p99_ms"):
                    m[f"{k}_x_{base}"] = median(
                        [by_proxy[p][i][k] / by_proxy[base][i][k] for i in range(rounds) if by_proxy[base][i][k]]
                    )
            m["cpu_over_noauth_us"] = median(
                [by_proxy[p][i]["cpu_us_per_req"] - by_proxy["noauth"][i]["cpu_us_per_req"] for i in range(rounds)]
            )
            m["rss_over_native_mb"] = m["rss_mb"] - median([r["rss_mb"] for r in by_proxy["native"]])
            m["min_cpu_us_per_req"] = min(r["cpu_us_per_req"] for r in rs)
            m["max_cpu_us_per_req"] = max(r["cpu_us_per_req"] for r in rs)
            row[p] = m
        out[case.name] = row
    return out


def machine() -> dict:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": model, "cpus": os.cpu_count(), "kernel": platform.release()}


def fmt(value: float, digits: int = 0) -> str:
    return "n/a" if value != value else f"{value:,.{digits}f}"


def write_markdown(path: Path, meta: dict, summary: dict, cases: list[Case], skipped: list[Case], bad: list[str]) -> None:
    lines = [
        "# ext_authz benchmark",
        "",
        f"{meta['date']} on {meta['machine']['cpu']} ({meta['machine']['cpus']} CPUs, Linux "
        f"{meta['machine']['kernel']}), {meta['envoy']}. Written by `{meta['command']}`.",
        "",
        f"Each proxy is an Envoy with `--concurrency 1`; all share one auth server "
        f"(`example-auth-server --quiet`, release build) and one backend (an Envoy `direct_response`). "
        f"{meta['pinning']} "
        f"Load: `wrk -t1 -c{meta['connections']} -d{meta['seconds']}s` on 127.0.0.1, "
        f"{meta['rounds']} round(s) interleaved; medians over rounds. Ratios are medians of the per-round "
        f"ratios. CPU is the proxy process's utime+stime over the run divided by its requests.",
        "",
    ]
    # The targets are the filter's; a run of another module (the floor) has none.
    allowed = summary.get("allowed") if meta["wasm_title"] == "wasm ext_authz" else None
    if allowed:
        w, n = allowed["wasm"], allowed["native"]
        rows = [
            ("Proxy CPU per allowed request", f"{w['cpu_us_per_req_x_native']:.2f} x native", f"<= {TARGETS['cpu_x_native']:.2f} x",
             w["cpu_us_per_req_x_native"] <= TARGETS["cpu_x_native"]),
            (f"p99 latency at {meta['connections']} connections (allowed)", f"{w['p99_ms_x_native']:.2f} x native",
             f"<= {TARGETS['p99_x_native']:.2f} x", w["p99_ms_x_native"] <= TARGETS["p99_x_native"]),
            ("Proxy RSS, one worker", f"{w['rss_over_native_mb']:+.1f} MB vs native ({fmt(w['rss_mb'], 1)} vs {fmt(n['rss_mb'], 1)} MB)",
             f"<= +{TARGETS['rss_over_native_mb']:.0f} MB", w["rss_over_native_mb"] <= TARGETS["rss_over_native_mb"]),
            ("Module size", f"{meta['module_bytes'] / 1000:.1f} KB ({meta['module_bytes']:,} bytes)", f"<= {TARGETS['module_kb']:.0f} KB",
             meta["module_bytes"] / 1000 <= TARGETS["module_kb"]),
        ]
        lines += ["## Targets", "", "| Target | Measured | Limit | Met |", "|---|---|---|---|"]
        lines += [f"| {t} | {m} | {l} | {'yes' if ok else '**no**'} |" for t, m, l, ok in rows]
        lines.append("")
    if cases:
        lines += [
            "## Results",
            "",
            "| Case | Proxy | CPU us/req | x native | x no auth | +us over no auth | req/s | p50 ms | p99 ms | p99 x native | RSS MB | Module KB |",
            "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
        ]
        module_kb = f"{meta['module_bytes'] / 1000:.1f}"
        for case in cases:
            for p in PROXIES:
                m = summary[case.name][p]
                lines.append(
                    f"| {case.title} | {PROXY_TITLES[p]} | {fmt(m['cpu_us_per_req'])} | {m['cpu_us_per_req_x_native']:.2f} | "
                    f"{m['cpu_us_per_req_x_noauth']:.2f} | {fmt(m['cpu_over_noauth_us'])} | {fmt(m['rps'])} | "
                    f"{m['p50_ms']:.2f} | {m['p99_ms']:.2f} | {m['p99_ms_x_native']:.2f} | {m['rss_mb']:.1f} | "
                    f"{module_kb if p == 'wasm' else '-'} |"
                )
    lines.append("")
    for case in skipped:
        lines.append(f"Not measured: {case.title} ({case.skip}).")
    if bad:
        lines += ["", "Runs with problems (still counted):", ""] + [f"- {b}" for b in bad]
    lines.append("")
    path.write_text("\n".join(lines))


def write_chart(path: Path, meta: dict, summary: dict, cases: list[Case]) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("bench: matplotlib not installed; no chart", file=sys.stderr)
        return False
    colors = {"noauth": "#9e9e9e", "native": "#1f77b4", "wasm": "#ff7f0e"}
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    width = 0.26
    for ax, key, label in (
        (axes[0], "cpu_us_per_req", "proxy CPU per request (us), lower is better"),
        (axes[1], "p99_ms", f"p99 latency at {meta['connections']} connections (ms), lower is better"),
    ):
        for i, p in enumerate(PROXIES):
            xs = [c + (i - 1) * width for c in range(len(cases))]
            ys = [summary[case.name][p][key] for case in cases]
            bars = ax.bar(xs, ys, width, label=PROXY_TITLES[p], color=colors[p])
            if p != "native":
                for bar, case in zip(bars, cases):
                    ratio = summary[case.name][p][f"{key}_x_native"]
                    ax.annotate(f"{ratio:.2f}x", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                                ha="center", va="bottom", fontsize=8)
        ax.set_xticks(range(len(cases)))
        ax.set_xticklabels([c.title.replace(", ", "\n") for c in cases], fontsize=9)
        ax.set_title(label, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=9, frameon=False)
    fig.suptitle(
        f"ext_authz in Envoy 1 worker: no auth vs native vs wasm (ratios to native)  "
        f"module {meta['module_bytes'] / 1000:.0f} KB\n{meta['date']}, {meta['machine']['cpu']}, {meta['machine']['cpus']} CPUs",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# --- main --------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "bench"), help="where results.md/.json/.png go")
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", 5)))
    ap.add_argument("--seconds", type=int, default=int(os.environ.get("BENCH_SECONDS", 8)))
    ap.add_argument("--warmup", type=int, default=int(os.environ.get("BENCH_WARMUP", 3)), help="seconds per proxy and case")
    ap.add_argument("--connections", type=int, default=int(os.environ.get("BENCH_CONNECTIONS", 8)))
    ap.add_argument("--cases", default=os.environ.get("BENCH_CASES", ""), help="comma-separated subset")
    ap.add_argument("--smoke", action="store_true", help="one short round: that it runs and writes its table")
    ap.add_argument("--no-chart", action="store_true")
    ap.add_argument("--memory-seconds", type=int, default=int(os.environ.get("BENCH_MEMORY_SECONDS", 60)),
                    help="length of the memory-over-time run (0: none)")
    ap.add_argument("--no-pin", action="store_true", help="do not give the proxies a CPU of their own")
    ap.add_argument("--growth-rounds", type=int, default=int(os.environ.get("BENCH_GROWTH_ROUNDS", 3)),
                    help="rounds of the growth series (0: none)")
    ap.add_argument("--growth-seconds", type=int, default=int(os.environ.get("BENCH_GROWTH_SECONDS", 2)))
    ap.add_argument("--growth-warmup", type=int, default=int(os.environ.get("BENCH_GROWTH_WARMUP", 1)))
    ap.add_argument("--growth-only", action="store_true", help="only the growth series, not the headline cases")
    ap.add_argument("--envoy", default=os.environ.get("ENVOY_BIN", str(ROOT / ".venv" / "envoy-bin")))
    ap.add_argument("--wasm", default=os.environ.get("EXT_AUTHZ_WASM", str(ROOT / "dist" / "ext_authz.wasm")))
    ap.add_argument("--auth-server", default=str(ROOT / "target" / "release" / "example-auth-server"))
    ap.add_argument("--wasm-title", default=PROXY_TITLES["wasm"],
                    help="what the tables call the wasm proxy (the floor run: `wasm floor`)")
    args = ap.parse_args()
    PROXY_TITLES["wasm"] = args.wasm_title
    if args.smoke:
        args.rounds, args.seconds, args.warmup = 1, 2, 1
        args.memory_seconds = min(args.memory_seconds, 4)
        args.growth_rounds, args.growth_seconds, args.growth_warmup = min(args.growth_rounds, 1), 1, 0
    growth_plan = growth.SMOKE if args.smoke else growth.FULL

    for path, hint in ((args.envoy, "make envoy"), (args.wasm, "make build"),
                       (args.auth_server, "cargo build --release -p example-auth-server")):
        if not Path(path).exists():
            raise SystemExit(f"bench: {path} not found: run `{hint}`")
    if subprocess.run(["which", "wrk"], capture_output=True).returncode != 0:
        raise SystemExit("bench: wrk not found: run `make packages` (Debian package wrk)")

    wanted = set(filter(None, args.cases.split(",")))
    cases = [] if args.growth_only else [c for c in CASES if not c.skip and (not wanted or c.name in wanted)]
    skipped = [c for c in CASES if c.skip]
    wasm = Path(args.wasm).resolve()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (ROOT / "bench" / "work").mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=ROOT / "bench" / "work"))
    envoy_version = subprocess.run([args.envoy, "--version"], capture_output=True, text=True).stdout
    m = re.search(r"/(\d+\.\d+\.\d+)/", envoy_version)
    meta = {
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "envoy": f"Envoy {m.group(1) if m else '?'}",
        "command": "make bench-smoke" if args.smoke else "make bench",
        "rounds": args.rounds,
        "seconds": args.seconds,
        "connections": args.connections,
        "module_bytes": wasm.stat().st_size,
        "growth_rounds": args.growth_rounds,
        "growth_seconds": args.growth_seconds,
        "wasm_title": args.wasm_title,
    }
    print(f"bench: {len(cases)} cases x {len(PROXIES)} proxies x {args.rounds} rounds x {args.seconds}s; work dir {work}")

    global PIN
    PIN = None if args.no_pin else cpu_split()
    proxy_cpus, load_cpus = PIN if PIN else (None, None)
    meta["pinning"] = (
        f"The proxies run on CPU {','.join(map(str, sorted(proxy_cpus)))}, wrk, the auth server and the "
        f"backend on CPU {','.join(map(str, sorted(load_cpus)))}."
        if PIN
        else "No CPU pinning."
    )
    children = Children()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        auth_port = free_port()
        auth_log = work / "auth-server.log"
        auth = children.start([args.auth_server, "--listen", f"127.0.0.1:{auth_port}", "--quiet"], auth_log, load_cpus)

        def auth_ready() -> bool:
            socket.create_connection(("127.0.0.1", auth_port), timeout=1).close()
            return True

        wait_for("auth server", auth_ready, auth, auth_log)
        backend = start_envoy(children, args.envoy, "backend", backend_bootstrap(), work, load_cpus)
        backend_port = backend.ports["backend"]
        slow_port = silent_server()
        proxies = {
            p: start_envoy(children, args.envoy, p, proxy_bootstrap(p, cases, auth_port, backend_port, wasm, slow_port), work, proxy_cpus)
            for p in PROXIES
        } if cases else {}

        # Each proxy answers each case as expected before any time is measured.
        for p, envoy in proxies.items():
            for case in cases:
                status = one_request(envoy.ports[f"{p}_{case.name}"], case)
                if status != case.expected_status(p):
                    raise SystemExit(f"bench: {p}/{case.name}: status {status}, expected {case.expected_status(p)}")
        for case in cases:
            for p in PROXIES:
                run_wrk(proxies[p].ports[f"{p}_{case.name}"], case, args.warmup, args.connections)

        runs: dict[tuple[str, str], list[dict]] = {(p, c.name): [] for p in PROXIES for c in cases}
        bad: list[str] = []
        for r in range(args.rounds):
            for case in cases:
                order = PROXIES[r % len(PROXIES) :] + PROXIES[: r % len(PROXIES)]
                for p in order:
                    run = measure(proxies[p], auth.pid, case, args.seconds, args.connections)
                    runs[(p, case.name)].append(run)
                    for problem in problems(p, case, run):
                        bad.append(f"round {r + 1}, {PROXY_TITLES[p]}, {case.title}: {problem}")
                    print(
                        f"round {r + 1}/{args.rounds} {case.name:10} {p:7} {run['cpu_us_per_req']:7.1f} us/req "
                        f"{run['rps']:8.0f} req/s p50 {run['p50_ms']:.2f} ms p99 {run['p99_ms']:.2f} ms "
                        f"rss {run['rss_mb']:.1f} MB",
                        flush=True,
                    )
        memory = None
        allowed_case = next((c for c in cases if c.name == "allowed"), None)
        if args.memory_seconds > 0 and allowed_case:
            memory = memory_over_time(proxies, allowed_case, args.memory_seconds, args.connections)
            print(f"memory over {args.memory_seconds}s: " + ", ".join(
                f"{p} {m['first_mb']:.1f} -> {m['last_mb']:.1f} MB" for p, m in memory.items()), flush=True)
        # The headline proxies are done: the growth series starts proxies of its own.
        for envoy in proxies.values():
            envoy.proc.terminate()
            envoy.proc.wait(timeout=10)
        growth_runs: dict = {}
        if args.growth_rounds > 0:
            growth_runs, growth_bad = run_growth(children, args, auth.pid, auth_port, backend_port, wasm, work, growth_plan)
            bad += growth_bad
    finally:
        children.stop()
    # The configs and logs of a run that got this far are not needed any more.
    shutil.rmtree(work, ignore_errors=True)

    summary = summarize(runs, cases, args.rounds)
    growth_summary = growth.summarize(growth_runs, PROXIES)
    (out / "results.json").write_text(
        json.dumps({"meta": meta, "summary": summary, "memory": memory, "growth": growth_summary,
                    "runs": {f"{p}/{c}": v for (p, c), v in runs.items()},
                    "growth_runs": {f"{s}/{x}/{p}": v for (s, x, p), v in growth_runs.items()}}, indent=1)
    )
    write_markdown(out / "results.md", meta, summary, cases, skipped, bad)
    with (out / "results.md").open("a") as md:
        md.write("\n".join(extra_sections(summary, memory) + growth.markdown(growth_summary, meta, PROXY_TITLES)))
    print((out / "results.md").read_text())
    if not args.no_chart and cases and write_chart(out / "results.png", meta, summary, cases):
        print(f"bench: wrote {out / 'results.png'}")
    if not args.no_chart and growth.chart(out / "growth.png", growth_summary, meta, PROXY_TITLES):
        print(f"bench: wrote {out / 'growth.png'}")
    print(f"bench: results in {out / 'results.md'} and {out / 'results.json'}")
    # A smoke run fails on wrong answers or empty runs; a full run reports them in its table.
    if args.smoke and bad:
        print("bench: smoke failed:\n" + "\n".join(bad), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
