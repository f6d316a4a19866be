-- wrk script for bench/compare.
--
--   wrk ... -s bench/wrk.lua URL [-- DEPTH]
--
-- DEPTH > 1 pipelines: every write carries DEPTH copies of the request (the idiom of wrk's own
-- examples/scripts/pipeline.lua). wrk counts the requests in that buffer and expects as many
-- responses before it writes again; it records one latency sample per batch.
--
-- done() prints one machine-readable line that bench/compare parses:
--   BENCH requests=N duration_us=N bytes=N connect=N read=N write=N status=N timeout=N
--         p50_us=N p99_us=N mean_us=N max_us=N

init = function(args)
   local depth = tonumber(args[1] or "1") or 1
   if depth > 1 then
      local r = {}
      for i = 1, depth do
         r[i] = wrk.format(nil, wrk.path)
      end
      local batch = table.concat(r)
      -- Defined only when pipelining: without a request() function wrk keeps its faster
      -- static-request path.
      request = function()
         return batch
      end
   end
end

done = function(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "BENCH requests=%d duration_us=%d bytes=%d connect=%d read=%d write=%d status=%d "
         .. "timeout=%d p50_us=%d p99_us=%d mean_us=%d max_us=%d\n",
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(99), latency.mean, latency.max))
end
