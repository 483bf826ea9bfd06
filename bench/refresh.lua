-- wrk script: refresh chains. REFRESH names a file of refresh tokens, one a
-- line, each the start of a chain. Each token is spent once and its
-- successor goes back in the pool, so every request is a real rotation,
-- never a grace replay; a chain that breaks (any answer without a
-- refresh_token) shows in wrk's Non-2xx count. Once the pool is empty the
-- connection asks /healthz.
local pool = {}
for line in io.lines(os.getenv("REFRESH")) do if #line > 0 then pool[#pool + 1] = line end end
request = function()
  local token = table.remove(pool, 1)
  if token == nil then return wrk.format("GET", "/healthz") end
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"},
    '{"refresh_token":"' .. token .. '"}')
end
response = function(status, headers, body)
  local next_token = body and body:match('"refresh_token":"([^"]+)"')
  if next_token then pool[#pool + 1] = next_token end
end
