-- Used by bench/run with "wrk -s": prints one machine-readable line with exact counts, so the
-- runner need not parse wrk's rounded, unit-suffixed human output. Latencies are in
-- microseconds; errors adds connect, read, write and timeout errors; non2xx is wrk's
-- "Non-2xx or 3xx responses".
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "GALEBENCH requests=%d bytes=%d duration_us=%d p50_us=%d p99_us=%d errors=%d non2xx=%d\n",
    summary.requests, summary.bytes, summary.duration,
    latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
