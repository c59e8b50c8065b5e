-- wrk script for `make bench`: an optional request body, and a machine-readable summary.
--
-- BENCH_BODY_BYTES=N turns every request into a POST with an N-byte body (the with_request_body
-- case); BENCH_VARY_HEADER (below) varies a header. At the end one line `BENCH-JSON {...}`
-- carries what bench.py reads: counts, errors and latency percentiles in microseconds.

local body_bytes = tonumber(os.getenv("BENCH_BODY_BYTES") or "0") or 0
if body_bytes > 0 then
  wrk.method = "POST"
  wrk.body = string.rep("x", body_bytes)
  wrk.headers["Content-Type"] = "application/octet-stream"
end

-- BENCH_VARY_HEADER=name gives that header a new value on every request (the cache-miss case).
local vary = os.getenv("BENCH_VARY_HEADER") or ""
if vary ~= "" then
  local n = 0
  request = function()
    n = n + 1
    wrk.headers[vary] = tostring(n)
    return wrk.format()
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH-JSON {\"requests\":%d,\"duration_us\":%d,\"bytes\":%d," ..
    "\"errors\":{\"connect\":%d,\"read\":%d,\"write\":%d,\"status\":%d,\"timeout\":%d}," ..
    "\"latency_us\":{\"mean\":%.1f,\"max\":%d,\"p50\":%d,\"p90\":%d,\"p99\":%d,\"p999\":%d}}\n",
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9)))
end
