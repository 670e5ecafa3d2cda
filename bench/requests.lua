-- wrk script: cycle through a pre-generated request list (one request per line:
-- METHOD <TAB> PATH <TAB> BEARER-TOKEN-OR-- <TAB> JSON-BODY-OR-EMPTY), each wrk thread from its
-- own offset, requests pre-formatted once in init() so request() costs a table lookup.
-- The list file is named by the environment variable BENCH_REQUESTS; done() prints one JSON line.
local requests = {}
local n = 0
local i = 0
local counter = 0
local threads = {}

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local path = os.getenv("BENCH_REQUESTS")
  for line in io.lines(path) do
    local method, p, token, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t?(.*)$")
    local headers = {}
    if token ~= "-" then headers["Authorization"] = "Bearer " .. token end
    if body == "" then body = nil else headers["Content-Type"] = "application/json" end
    n = n + 1
    requests[n] = wrk.format(method, p, headers, body)
  end
  i = (id * 7919) % n
end

function request()
  i = i + 1
  if i > n then i = 1 end
  return requests[i]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, ' ..
    '"connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d, "non_2xx": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.timeout, e.status))
end
