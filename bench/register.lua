-- wrk script: POST /auth/register with a unique e-mail and username on every request.
--   wrk -t2 -c16 -d15s -s bench/register.lua http://127.0.0.1:PORT -- RUNID
-- Counts the answers by status; done() prints one machine-readable line:
--   REGISTER created=N other=M seconds=S created_per_sec=R statuses=201:N,409:M
-- Only 201s count as sign-ups.

local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  run = args[1] or tostring(os.time())
  counter = 0
  created = 0
  other = 0
  statuses = {}
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  local key = string.format("%sT%dx%d", run, tid, counter)
  local body = string.format(
    '{"email":"b%s@bench.example.com","username":"b%s","password":"Bench-%s-Pw-%d"}',
    key, key, key, counter)
  return wrk.format("POST", "/auth/register", nil, body)
end

function response(status, headers, body)
  if status == 201 then
    created = created + 1
  else
    other = other + 1
  end
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total_created, total_other = 0, 0
  local merged = {}
  for _, t in ipairs(threads) do
    total_created = total_created + t:get("created")
    total_other = total_other + t:get("other")
    local s = t:get("statuses")
    for code, n in pairs(s) do merged[code] = (merged[code] or 0) + n end
  end
  local codes = {}
  for code, n in pairs(merged) do table.insert(codes, string.format("%d:%d", code, n)) end
  table.sort(codes)
  local seconds = summary.duration / 1e6
  io.write(string.format("REGISTER created=%d other=%d seconds=%.2f created_per_sec=%.1f statuses=%s\n",
    total_created, total_other, seconds, total_created / seconds, table.concat(codes, ",")))
end
