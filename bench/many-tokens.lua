-- wrk script: GET with a bearer token taken round-robin from the file named
-- by $TOKENS (one token a line). Used by bench/run.sh and bench/instructions.sh.
local tokens, i = {}, 0
for line in io.lines(os.getenv("TOKENS")) do if #line > 0 then tokens[#tokens + 1] = line end end
request = function()
  i = i % #tokens + 1
  return wrk.format("GET", nil, {Authorization = "Bearer " .. tokens[i]})
end
