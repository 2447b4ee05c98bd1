-- POSTs a body template, replacing every __ID__ with a value unique to this request, so that each
-- request concerns new contacts. Set through environment variables:
--   BENCH_BODY_FILE  the template
--   BENCH_PATH       the route (default /platform/events)
--   BENCH_TOKEN      the Bearer token
--   BENCH_KEYED      if set, each request has an Idempotency-Key of its own (the same value)
-- At the end it prints one JSON line: requests, non-2xx, socket errors, latency percentiles (us).

local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  local file = assert(io.open(os.getenv("BENCH_BODY_FILE"), "r"))
  template = file:read("*a")
  file:close()
  path = os.getenv("BENCH_PATH") or "/platform/events"
  headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN"),
  }
  keyed = os.getenv("BENCH_KEYED") ~= nil
  failures = 0
  run = tostring(os.time())
end

function request()
  counter = counter + 1
  local unique = run .. "-" .. id .. "-" .. counter
  local sent = headers
  if keyed then
    sent = {["Idempotency-Key"] = unique}
    for name, value in pairs(headers) do sent[name] = value end
  end
  return wrk.format("POST", path, sent, template:gsub("__ID__", unique))
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    failures = failures + 1
  end
end

function done(summary, latency, requests)
  local non2xx = 0
  for _, thread in ipairs(threads) do
    non2xx = non2xx + thread:get("failures")
  end
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "non2xx": %d, "socket_errors": %d, ' ..
    '"p50_us": %d, "p95_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, non2xx, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
