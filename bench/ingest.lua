-- wrk script of bench/ingest.sh: posts pre-signed LiveKit webhooks from a
-- pool written by bench/lk_pool.cjs (one "TOKEN<TAB>BODY" per line), each
-- request with its own event id. wrk thread K of N sends lines K, K+N,
-- K+2N, ... in order, so no line is sent twice until a thread has used its
-- whole share; if one did, done() says so ("wrapped"), and the run's
-- aftercall figures must not be trusted (duplicates are cheaper).
-- Environment: POOL (the pool file), WRK_THREADS (wrk's -t), URL_PATH.
-- done() prints one machine-readable line:
--   RESULT requests=N seconds=S rps=R p50_us=A p99_us=B non2xx=N errors=N wrapped=N
local pool_file = os.getenv("POOL")
local nthreads = tonumber(os.getenv("WRK_THREADS") or "1")
local path = os.getenv("URL_PATH") or "/webhooks/livekit"

local threads = {}
local counter = 0

function setup(thread)
   thread:set("tid", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

local reqs, nreqs, i
-- A global, not a local: done() reads it through thread:get(), which sees
-- only a thread's globals.
wrapped = 0

function init(args)
   reqs, nreqs, i = {}, 0, 0
   wrapped = 0
   local k = 0
   for line in io.lines(pool_file) do
      if k % nthreads == tid then
         local tab = line:find("\t", 1, true)
         nreqs = nreqs + 1
         reqs[nreqs] = wrk.format("POST", path, {
            ["Authorization"] = line:sub(1, tab - 1),
            ["Content-Type"] = "application/webhook+json",
         }, line:sub(tab + 1))
      end
      k = k + 1
   end
   if nreqs == 0 then
      error("no requests for thread " .. tid .. " in " .. tostring(pool_file))
   end
end

function request()
   i = i + 1
   if i > nreqs then
      i = 1
      wrapped = wrapped + 1
   end
   return reqs[i]
end

function done(summary, latency, requests)
   local w = 0
   for _, t in ipairs(threads) do
      w = w + (t:get("wrapped") or 0)
   end
   local secs = summary.duration / 1e6
   local e = summary.errors
   io.write(string.format(
      "RESULT requests=%d seconds=%.3f rps=%.0f p50_us=%d p99_us=%d non2xx=%d errors=%d wrapped=%d\n",
      summary.requests, secs, summary.requests / secs, latency:percentile(50),
      latency:percentile(99), e.status, e.connect + e.read + e.write + e.timeout, w))
end
