-- wrk script: POST /auth/login again and again for one account (each login verifies its argon2id hash).
--   wrk -t2 -c16 -d15s -s bench/login.lua http://127.0.0.1:PORT -- EMAIL PASSWORD
-- Counts the answers by status; done() prints one machine-readable line:
--   LOGIN ok=N other=M seconds=S ok_per_sec=R statuses=200:N
-- Only 200s count as logins.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  ok = 0
  other = 0
  statuses = {}
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  body = string.format('{"email":"%s","password":"%s"}', args[1], args[2])
end

function request()
  return wrk.format("POST", "/auth/login", nil, body)
end

function response(status, headers, body)
  if status == 200 then ok = ok + 1 else other = other + 1 end
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total_ok, total_other, merged = 0, 0, {}
  for _, t in ipairs(threads) do
    total_ok = total_ok + t:get("ok")
    total_other = total_other + t:get("other")
    for code, n in pairs(t:get("statuses")) do merged[code] = (merged[code] or 0) + n end
  end
  local codes = {}
  for code, n in pairs(merged) do table.insert(codes, string.format("%d:%d", code, n)) end
  table.sort(codes)
  local seconds = summary.duration / 1e6
  io.write(string.format("LOGIN ok=%d other=%d seconds=%.2f ok_per_sec=%.1f statuses=%s\n",
    total_ok, total_other, seconds, total_ok / seconds, table.concat(codes, ",")))
end
