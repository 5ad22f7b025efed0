-- wrk script of bench/run.sh. At the end it prints one line the script reads:
--   BENCH rps=... p50_us=... p99_us=... requests=... non2xx=... errors=...
-- BENCH_TOKENS_FILE=FILE: each request carries the next token of FILE (one a line) as a
-- bearer token. BENCH_POLICIES=N: each request asks the next of policies p0..pN-1
-- (/jwtgate/auth/bench/pI). Without either, wrk sends its static request.

local tokens_file = os.getenv("BENCH_TOKENS_FILE")
local npolicies = tonumber(os.getenv("BENCH_POLICIES") or "")

local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

if tokens_file or npolicies then
  local auth = {}
  if tokens_file then
    for line in io.lines(tokens_file) do
      if #line > 0 then auth[#auth + 1] = "Bearer " .. line end
    end
    assert(#auth > 0, "no tokens in " .. tokens_file)
  end
  local paths = {}
  if npolicies then
    for i = 0, npolicies - 1 do paths[#paths + 1] = "/jwtgate/auth/bench/p" .. i end
  end
  local i = 0
  function init(args)
    -- threads start far apart in the lists
    i = (tid or 0) * 7919
  end
  function request()
    i = i + 1
    if #auth > 0 then wrk.headers["Authorization"] = auth[i % #auth + 1] end
    local path = nil
    if #paths > 0 then path = paths[i % #paths + 1] end
    return wrk.format(nil, path)
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH rps=%.1f p50_us=%d p99_us=%d requests=%d non2xx=%d errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50), latency:percentile(99),
    summary.requests, e.status, e.connect + e.read + e.write + e.timeout))
end
