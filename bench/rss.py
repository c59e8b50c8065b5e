#!/usr/bin/env python3
"""Where a proxy's RSS goes (bench/NOTES.md, "Where the RSS goes (issue 14)").

Starts one Envoy per variant (each alone, stopped before the next), all sharing one auth server and
one backend as `bench.py` sets them up, with one listener (the headline "allowed, 6 headers" case).
For each variant it takes the RSS split three times: when Envoy is ready (module loaded, no
traffic), after one request, and after a `wrk` load with 8 connections per worker; each time from
/proc/PID/smaps: Envoy's binary paged in, tcmalloc's heap (its largest anonymous mapping), the
wasm linear memories (each the read-write start of a V8 reservation followed by a guard region of
several GiB), V8's wasm code space (anonymous and executable), the rest; and tcmalloc's own
figures from the admin `/memory` (`allocated` is the live heap). It also gives the proxy's CPU per
request over the load (`--pin` as `make bench` pins), for a rough A/B of a knob.

A variant is `label=kind[,key=value...]`, kind `noauth`, `native` or `wasm`; keys for `wasm`:
`file=PATH` (default: $EXT_AUTHZ_WASM), `runtime=NAME` (`envoy.wasm.runtime.NAME`; Envoy 1.40
from PyPI has only v8), `vm_id=ID` (`each`: one per
plugin), `plugins=N` (N listeners with the same plugin, as `make bench` has one per case),
`precompiled=1` (allow_precompiled), `config=JSON` (the plugin configuration; default the
bench's). For every kind, `release=BYTES`: the bootstrap's `memory_allocator_manager` (tcmalloc
gives back BYTES of free memory to the OS every second). Example:

    bench/rss-probe/build.sh
    bench/rss.py --concurrency 1 --concurrency 4 native wasm noop=wasm,file=bench/work/rss-probe/out/noop.wasm

Prints a table per concurrency and writes everything to `--json` if given.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

import bench

GIB = 1 << 30


def smaps(pid: int) -> dict:
    """Resident KB by kind of mapping. A wasm linear memory is the read-write part of a V8
    reservation followed by a guard region of several GiB; V8's wasm code space is anonymous and
    executable; the largest other anonymous mapping is tcmalloc's heap."""
    maps: list[dict] = []
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        parts = line.split()
        if not parts[0].endswith(":") and "-" in parts[0]:
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            maps.append({"lo": lo, "hi": hi, "perms": parts[1], "path": parts[5] if len(parts) > 5 else ""})
        elif maps and len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
            maps[-1][parts[0][:-1]] = int(parts[1])
    out = {"rss": 0, "anon": 0, "file": 0, "envoy_bin": 0, "linear_memory": 0, "linear_memories": 0,
           "code_space": 0, "largest_anon": 0, "other_anon": 0}
    anon_rest = []
    for i, m in enumerate(maps):
        rss, anon = m.get("Rss", 0), m.get("Anonymous", 0)
        out["rss"] += rss
        out["anon"] += anon
        out["file"] += rss - anon
        nxt = maps[i + 1] if i + 1 < len(maps) else None
        if m["path"].endswith("/envoy"):
            out["envoy_bin"] += rss - anon
        elif m["path"]:
            continue
        elif nxt and nxt["lo"] == m["hi"] and nxt["perms"].startswith("---") and nxt["hi"] - nxt["lo"] >= 4 * GIB:
            out["linear_memory"] += rss
            out["linear_memories"] += 1
        elif "x" in m["perms"]:
            out["code_space"] += rss
        else:
            anon_rest.append(rss)
    anon_rest.sort()
    out["largest_anon"] = anon_rest[-1] if anon_rest else 0
    out["other_anon"] = sum(anon_rest[:-1])
    return out


def tcmalloc(admin_port: int) -> dict:
    try:
        m = json.loads(bench.http_get(admin_port, "/memory"))
    except (OSError, ValueError):
        return {}
    return {k: int(v) // 1024 for k, v in m.items() if str(v).isdigit()}


def snapshot(envoy: bench.Envoy) -> dict:
    return {"vmrss": bench.rss_kb(envoy.proc.pid), "smaps": smaps(envoy.proc.pid), "tcmalloc": tcmalloc(envoy.admin_port)}


def parse_variant(spec: str) -> tuple[str, str, dict]:
    label, _, rest = spec.partition("=")
    kind, *opts = rest.split(",") if rest else [label]
    o = {}
    for opt in opts:
        k, _, v = opt.partition("=")
        o[k] = v
    return label, kind, o


def filters(kind: str, o: dict, default_wasm: str, i: int = 0) -> list[dict]:
    f = bench.auth_filter(kind, dict(bench.AUTH_CONFIG), Path(o.get("file", default_wasm)))
    if kind != "wasm":
        return f
    cfg = f[0]["typed_config"]["config"]
    vm = cfg["vm_config"]
    if "runtime" in o:
        vm["runtime"] = f"envoy.wasm.runtime.{o['runtime']}"
    if "vm_id" in o:
        vm["vm_id"] = f"vm{i}" if o["vm_id"] == "each" else o["vm_id"]
    if o.get("precompiled"):
        vm["allow_precompiled"] = True
    if "config" in o:
        cfg["configuration"]["value"] = o["config"]
    return f


def bootstrap(label: str, kind: str, o: dict, default_wasm: str, auth_port: int, backend_port: int) -> dict:
    n = int(o.get("plugins", 1))
    listeners = [
        bench.listener(f"{label}_allowed" if i == 0 else f"{label}_extra{i}",
                       {"route": {"cluster": "backend", "timeout": "10s"}}, filters(kind, o, default_wasm, i))
        for i in range(n)
    ]
    release = {"memory_allocator_manager": {"bytes_to_release": int(o["release"]), "memory_release_interval": "1s"}} \
        if "release" in o else {}
    return {
        **release,
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {
            "listeners": listeners,
            "clusters": [bench.cluster("ext_authz", auth_port, True), bench.cluster("backend", backend_port, False)],
        },
    }


def measure(children, args, label, kind, o, concurrency, auth_port, backend_port, work) -> dict:
    envoy = bench.start_envoy(children, args.envoy, label, bootstrap(label, kind, o, args.wasm, auth_port, backend_port),
                              work, bench.PIN[0] if bench.PIN else None, concurrency, stem=f"{label}-w{concurrency}")
    try:
        case = next(c for c in bench.CASES if c.name == "allowed")
        port = envoy.ports[f"{label}_allowed"]
        time.sleep(args.settle)
        idle = snapshot(envoy)
        status = bench.one_request(port, case)
        time.sleep(args.settle)
        one = snapshot(envoy)
        before = bench.cpu_ticks(envoy.proc.pid)
        run = bench.run_wrk(port, case, args.seconds, 8 * concurrency)
        ticks = sum(bench.cpu_ticks(envoy.proc.pid)) - sum(before)
        cpu = ticks * 1e6 / bench.CLK_TCK / run["requests"] if run["requests"] else float("nan")
        time.sleep(args.settle)
        loaded = snapshot(envoy)
        if args.keep_smaps:
            (work / f"{label}-w{concurrency}.smaps").write_text(Path(f"/proc/{envoy.proc.pid}/smaps").read_text())
        return {"label": label, "kind": kind, "opts": o, "concurrency": concurrency, "status": status,
                "requests": run["requests"], "errors": run["errors"], "cpu_us_per_req": cpu,
                "idle": idle, "one": one, "loaded": loaded}
    finally:
        envoy.proc.terminate()
        envoy.proc.wait(timeout=10)


def mb(kb: float) -> str:
    return f"{kb / 1024:.1f}"


def table(results: list[dict]) -> str:
    base = next((r for r in results if r["kind"] == "native"), None)
    rows = ["| variant | status | idle | 1 req | after load | vs native | file: envoy bin | anon: tcmalloc heap "
            "| of it live | of it free, kept | wasm code | linear mem (n) | other anon | CPU us/req |",
            "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for r in results:
        s, t = r["loaded"]["smaps"], r["loaded"]["tcmalloc"]
        vs = f"{(r['loaded']['vmrss'] - base['loaded']['vmrss']) / 1024:+.1f}" if base else "-"
        rows.append(
            f"| {r['label']} | {r['status']} | {mb(r['idle']['vmrss'])} | {mb(r['one']['vmrss'])} | "
            f"{mb(r['loaded']['vmrss'])} | {vs} | {mb(s['envoy_bin'])} | {mb(s['largest_anon'])} | "
            f"{mb(t.get('allocated', 0))} | {mb(max(0, s['largest_anon'] - t.get('allocated', 0)))} | "
            f"{mb(s['code_space'])} | {mb(s['linear_memory'])} ({s['linear_memories']}) | {mb(s['other_anon'])} | "
            f"{r['cpu_us_per_req']:.0f} |")
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("variants", nargs="+")
    ap.add_argument("--concurrency", type=int, action="append")
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--settle", type=float, default=1.0, help="seconds to wait before each snapshot")
    ap.add_argument("--json")
    ap.add_argument("--pin", action="store_true", help="the proxy on the last CPU, wrk and the servers on the others")
    ap.add_argument("--keep-smaps", action="store_true", help="keep each variant's smaps after the load in the work dir")
    ap.add_argument("--envoy", default=os.environ.get("ENVOY_BIN", str(bench.ROOT / ".venv" / "envoy-bin")))
    ap.add_argument("--wasm", default=os.environ.get("EXT_AUTHZ_WASM", str(bench.ROOT / "dist" / "ext_authz.wasm")))
    ap.add_argument("--auth-server", default=str(bench.ROOT / "target" / "release" / "example-auth-server"))
    args = ap.parse_args()
    variants = [parse_variant(v) for v in args.variants]
    bench.PIN = bench.cpu_split() if args.pin else None
    (bench.ROOT / "bench" / "work").mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="rss-", dir=bench.ROOT / "bench" / "work"))
    children = bench.Children()
    results: list[dict] = []
    print(f"rss: work dir {work}")
    try:
        auth_port = bench.free_port()
        load_cpus = bench.PIN[1] if bench.PIN else None
        auth = children.start([args.auth_server, "--listen", f"127.0.0.1:{auth_port}", "--quiet"], work / "auth.log",
                              load_cpus)
        bench.wait_for("auth server", lambda: socket.create_connection(("127.0.0.1", auth_port), timeout=1).close() or True,
                       auth, work / "auth.log")
        backend = bench.start_envoy(children, args.envoy, "backend", bench.backend_bootstrap(), work, load_cpus)
        for concurrency in args.concurrency or [1]:
            batch = [measure(children, args, label, kind, o, concurrency, auth_port, backend.ports["backend"], work)
                     for label, kind, o in variants]
            results += batch
            print(f"\n--concurrency {concurrency} (MB; 'after load' = wrk {args.seconds}s, 8 conns/worker)\n")
            print(table(batch), flush=True)
    finally:
        children.stop()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
