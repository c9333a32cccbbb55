-- upsert.lua — wrk script for bench/durability/upsert.py: every request is
-- PUT /v1/collections/bench/points with one new point (a fresh id, one of
-- 512 pre-made random vectors of dimension $DIM).  Each connection is one
-- writer waiting for its acknowledgement before it sends the next.
local dim = tonumber(os.getenv("DIM") or "100")
local vecs = {}
math.randomseed(42)
for i = 1, 512 do
  local t = {}
  for j = 1, dim do t[j] = string.format("%.4f", math.random() * 2 - 1) end
  vecs[i] = table.concat(t, ",")
end
local counter = 0
local headers = {["Content-Type"] = "application/json"}

request = function()
  counter = counter + 1
  local body = '{"points":[{"id":' .. counter .. ',"vector":[' ..
               vecs[counter % 512 + 1] .. ']}]}'
  return wrk.format("PUT", "/v1/collections/bench/points", headers, body)
end
