"""The growth series of `make bench`: how a request's proxy CPU grows as its work grows.

Three series, each run on no auth, native ext_authz and this filter, all allowed requests:

- headers: an allowed GET with N headers besides `Host` and `x-ext-authz` (0, 10, 50, 100); the
  connection manager's `max_headers_count` is raised to 200 on these listeners so 100 fit;
- body: an allowed POST of N bytes under `with_request_body` (0, 1 KB, 16 KB, 64 KB; 0 is a GET),
  `max_request_bytes` 64 KiB, no partial messages;
- workers: Envoy `--concurrency` N (1, 2, 4) with 8 connections per worker, on the headline
  "allowed, 6 headers" request, with RSS after the run (the RSS target is per worker).

bench.py runs the points with its own proxies, wrk and measurement; this module says what the
points are, sums the runs up and writes the table and the chart. The growth series uses fewer and
shorter rounds than the headline cases (`BENCH_GROWTH_ROUNDS`, `BENCH_GROWTH_SECONDS`): it is
about slopes, not the last percent.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

HEADER_COUNTS = (0, 10, 50, 100)
BODY_BYTES = (0, 1024, 16384, 65536)
WORKERS = (1, 2, 4)
CONNECTIONS_PER_WORKER = 8
# One tiny point of each series: enough for `make bench-smoke` to run every code path.
SMOKE = {"headers": (10,), "body": (1024,), "workers": (2,)}
FULL = {"headers": HEADER_COUNTS, "body": BODY_BYTES, "workers": WORKERS}
AXES = {"headers": "request headers (besides Host, x-ext-authz)", "body": "request body (with_request_body; 0 is a GET)",
        "workers": "Envoy workers (--concurrency), 8 connections each"}
MAX_HEADERS_COUNT = 200
MAX_REQUEST_BYTES = 65536
# Issue 14: at most native + 20 MB of RSS per worker.
RSS_PER_WORKER_MB = 20.0


@dataclass
class Point:
    """One x of one series; `case` is a bench.py Case."""

    series: str
    x: int
    case: object


def points(make_case, allow: tuple[str, str], headline, plan: dict) -> list[Point]:
    """The points of the header and body series (run on one set of one-worker proxies) and of
    the worker series (each on proxies of its own), in that order."""
    out = []
    for n in plan["headers"]:
        headers = [allow] + [(f"x-grow-{i:03}", f"value-{i:03}-0123456789abcdef") for i in range(n)]
        out.append(Point("headers", n, make_case(
            f"grow_headers{n}", f"allowed, {n} extra headers", headers, allowed=True,
            hcm={"common_http_protocol_options": {"max_headers_count": MAX_HEADERS_COUNT}})))
    for n in plan["body"]:
        out.append(Point("body", n, make_case(
            f"grow_body{n}", f"allowed, {n} B body", [allow], allowed=True, body_bytes=n,
            config={"with_request_body": {"max_request_bytes": MAX_REQUEST_BYTES, "allow_partial_message": False}})))
    for n in plan["workers"]:
        out.append(Point("workers", n, headline))
    return out


def connections(point: Point, base: int) -> int:
    return CONNECTIONS_PER_WORKER * point.x if point.series == "workers" else base


def _median(values: list[float]) -> float:
    values = [v for v in values if v == v]
    return statistics.median(values) if values else float("nan")


def summarize(runs: dict, proxies: list[str]) -> dict:
    """`runs[(series, x, proxy)]` lists one measurement per round. Per series and x: medians per
    proxy, and the wasm/native ratio as the median of per-round ratios."""
    out: dict = {}
    for (series, x, proxy), rs in runs.items():
        row = out.setdefault(series, {}).setdefault(str(x), {})
        row[proxy] = {k: _median([r[k] for r in rs]) for k in ("cpu_us_per_req", "rps", "p99_ms", "rss_mb")}
        row[proxy]["connections"] = rs[0]["connections"] if rs else 0
    for series, xs in out.items():
        for x, row in xs.items():
            wasm, native = runs.get((series, int(x), "wasm"), []), runs.get((series, int(x), "native"), [])
            row["wasm_x_native"] = _median([w["cpu_us_per_req"] / n["cpu_us_per_req"]
                                            for w, n in zip(wasm, native) if n["cpu_us_per_req"]])
    return out


def _slope(xs: dict, proxy: str, per: float, skip_zero: bool) -> str:
    keys = sorted(xs, key=int)
    if skip_zero and len(keys) > 2 and keys[0] == "0":
        keys = keys[1:]
    if len(keys) < 2:
        return "n/a"
    lo, hi = xs[keys[0]][proxy]["cpu_us_per_req"], xs[keys[-1]][proxy]["cpu_us_per_req"]
    return f"{(hi - lo) / (int(keys[-1]) - int(keys[0])) * per:+.2f}"


def _rss_target(xs: dict) -> str:
    """The issue's RSS target, at one worker and at the most workers measured."""
    out = []
    for x in sorted(xs, key=int)[:: max(1, len(xs) - 1)]:
        over = xs[x]["wasm"]["rss_mb"] - xs[x]["native"]["rss_mb"]
        limit = RSS_PER_WORKER_MB * int(x)
        out.append(f"{x} worker(s): wasm {over:+.1f} MB over native, limit +{limit:.0f} MB: "
                   f"{'met' if over <= limit else '**not met**'}")
    return f"RSS target (native + {RSS_PER_WORKER_MB:.0f} MB per worker): " + "; ".join(out) + "."


def markdown(summary: dict, meta: dict, proxy_titles: dict) -> list[str]:
    if not summary:
        return []
    lines = [
        "## How the cost grows",
        "",
        f"Allowed requests only; {meta['growth_rounds']} round(s) of `wrk -d{meta['growth_seconds']}s` per point "
        f"(fewer and shorter than the headline cases above: read the slopes, not the last percent). Header and "
        "body points run on one-worker proxies with 8 connections; each worker count on proxies of its own, with "
        f"{CONNECTIONS_PER_WORKER} connections per worker. The proxies stay pinned to their one CPU, so more workers "
        "share it: the worker series shows what each worker adds, not more throughput. The body series' 0 is a GET, "
        "the others POSTs: the step from 0 to 1 KB is mostly a POST's own cost (no auth pays it too). Chart: `growth.png`.",
        "",
    ]
    per = {"headers": (1, "us per extra header"), "body": (1024, "us per extra KB"), "workers": (1, "us per extra worker")}
    for series in ("headers", "body", "workers"):
        xs = summary.get(series)
        if not xs:
            continue
        rss = series == "workers"
        head = f"| {AXES[series]} | no auth us/req | native us/req | wasm us/req | wasm x native | wasm - native us |"
        rule = "|--:|--:|--:|--:|--:|--:|"
        if rss:
            head += " conns | RSS no auth MB | RSS native MB | RSS wasm MB | wasm - native MB | per worker MB |"
            rule += "--:|--:|--:|--:|--:|--:|"
        lines += [f"### {series}", "", head, rule]
        for x in sorted(xs, key=int):
            row = xs[x]
            n, w, a = row["native"], row["wasm"], row["noauth"]
            line = (f"| {_label(series, int(x))} | {a['cpu_us_per_req']:.0f} | {n['cpu_us_per_req']:.0f} | {w['cpu_us_per_req']:.0f} | "
                    f"{row['wasm_x_native']:.2f} | {w['cpu_us_per_req'] - n['cpu_us_per_req']:+.0f} |")
            if rss:
                over = w["rss_mb"] - n["rss_mb"]
                line += (f" {w['connections']} | {a['rss_mb']:.1f} | {n['rss_mb']:.1f} | {w['rss_mb']:.1f} | "
                         f"{over:+.1f} | {over / int(x):+.1f} |")
            lines.append(line)
        if rss:
            lines += ["", _rss_target(xs)]
        scale, unit = per[series]
        # The body series' 0 is a GET: its slope runs from the first POST.
        first = "first POST" if series == "body" else "first"
        if len(xs) > 1:
            lines += ["", f"Slope, {first} to last point ({unit}): " + ", ".join(
                f"{proxy_titles[p]} {_slope(xs, p, scale, series == 'body')}" for p in ("noauth", "native", "wasm")) + "."]
        lines.append("")
    return lines


def _label(series: str, x: int) -> str:
    return f"{x // 1024} KB" if series == "body" and x else str(x)


def chart(path, summary: dict, meta: dict, proxy_titles: dict) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    series = [s for s in ("headers", "body", "workers") if summary.get(s)]
    if not series:
        return False
    colors = {"noauth": "#9e9e9e", "native": "#1f77b4", "wasm": "#ff7f0e"}
    fig, axes = plt.subplots(1, len(series), figsize=(5 * len(series), 4.4), squeeze=False)
    for ax, s in zip(axes[0], series):
        # Evenly spaced points, labelled with their values: 0 and 1 KB stay apart next to 64 KB.
        xs = sorted(summary[s], key=int)
        at = range(len(xs))
        for p in ("noauth", "native", "wasm"):
            ys = [summary[s][x][p]["cpu_us_per_req"] for x in xs]
            ax.plot(at, ys, marker="o", label=proxy_titles[p], color=colors[p])
        for i, x in zip(at, xs):
            ax.annotate(f"{summary[s][x]['wasm_x_native']:.2f}x", (i, summary[s][x]["wasm"]["cpu_us_per_req"]),
                        textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
        ax.set_xticks(list(at))
        ax.set_xticklabels([_label(s, int(x)) for x in xs])
        ax.set_xlabel(AXES[s], fontsize=9)
        ax.set_ylabel("proxy CPU per request (us)", fontsize=9)
        # Room above the highest point for its ratio.
        ax.set_ylim(0, ax.get_ylim()[1] * 1.08)
        ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=9, frameon=False)
    fig.suptitle(f"How proxy CPU per allowed request grows (wasm x native annotated), "
                 f"{meta['growth_rounds']} round(s) x {meta['growth_seconds']}s\n{meta['date']}, "
                 f"{meta['machine']['cpu']}, {meta['machine']['cpus']} CPUs", fontsize=10)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
