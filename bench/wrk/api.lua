-- wrk script for bench/api_bench.py. With WRK_RATE set, requests are paced: one schedule of send times at
-- WRK_RATE requests/s shared by the thread's connections, so they arrive evenly instead of in bursts (hey's
-- per-worker tickers fire together). Without it, every connection sends as fast as it gets answers.
-- WRK_METHOD / WRK_BODY / WRK_TOKEN shape the request; done() prints the counts and latency percentiles as JSON.
local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } timespec;
  int clock_gettime(int clk_id, timespec *tp);
]]
local ts = ffi.new("timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local interval_ms, next_slot

function init(args)
  local rate = os.getenv("WRK_RATE")
  interval_ms = rate and 1000 / tonumber(rate) or nil
  local method = os.getenv("WRK_METHOD")
  if method then wrk.method = method end
  local body = os.getenv("WRK_BODY")
  if body then wrk.body = body; wrk.headers["Content-Type"] = "application/json" end
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("WRK_TOKEN")
end

function delay()
  if not interval_ms then return 0 end
  local now = now_ms()
  next_slot = math.max(now, (next_slot or now) + interval_ms)
  return next_slot - now
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "status_errors": %d, "socket_errors": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, errors.status, errors.connect + errors.read + errors.write + errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
