-- wrk script for the benchmark suite: posts pre-signed requests read from
-- the file named by WRK_REQUESTS (records separated by \30, each
-- "signature\31body"), each thread its own share of them so that no
-- request is sent twice, and counts answers by status.
local path = os.getenv("WRK_REQUESTS")
local target = os.getenv("WRK_PATH") or "/"
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  local file = assert(io.open(path, "rb"))
  local all = file:read("*a")
  file:close()
  local count = tonumber(os.getenv("WRK_THREADS") or "1")
  requests = {}
  local i = 0
  for record in string.gmatch(all, "([^\30]+)") do
    if i % count == id then
      local signature, body = string.match(record, "^([^\31]*)\31(.*)$")
      requests[#requests + 1] = wrk.format("POST", target, {
        ["Host"] = "bench",
        ["Content-Type"] = "application/json",
        ["Signature"] = signature,
      }, body)
    end
    i = i + 1
  end
  n = 0
  statuses = {}
  wrapped = 0
end

function request()
  n = n + 1
  if n > #requests then
    n = 1
    wrapped = 1
  end
  return requests[n]
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local counts = {}
  local reused = 0
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      counts[status] = (counts[status] or 0) + count
    end
    reused = reused + thread:get("wrapped")
  end
  local parts = {}
  for status, count in pairs(counts) do
    parts[#parts + 1] = string.format('"%d":%d', status, count)
  end
  io.write(string.format(
    'WRK_JSON {"requests":%d,"seconds":%f,"statuses":{%s},"reused":%d,' ..
    '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,' ..
    '"p50_us":%d,"p99_us":%d,"p999_us":%d}\n',
    summary.requests, summary.duration / 1e6, table.concat(parts, ","), reused,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9)))
end
