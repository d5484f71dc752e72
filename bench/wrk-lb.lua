-- Used by bench/run for the lb-* scenarios with "wrk -s": every request carries
-- "X-User: user-N", N cycling over 1,000 users, so that balancers keyed by that header
-- spread the load; the result line is wrk-report.lua's.
dofile(os.getenv("BENCH_DIR") .. "/wrk-report.lua")

local n = 0
request = function()
  n = (n + 1) % 1000
  return wrk.format(nil, nil, { ["X-User"] = "user-" .. n })
end
