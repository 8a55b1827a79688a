-- PUT /leads/{id}/stage over many leads (BENCH_LEADS, comma-separated),
-- each pass flipping between two substages so that every request is a
-- real move: version, history row and audit row
local ids = {}
for id in string.gmatch(os.getenv("BENCH_LEADS"), "[^,]+") do
    ids[#ids + 1] = id
end

local stage = os.getenv("BENCH_STAGE")
local subs = { os.getenv("BENCH_SUBSTAGE_A"), os.getenv("BENCH_SUBSTAGE_B") }
local n = 0

-- each wrk thread starts at its own place in the list
local threads = 0
setup = function(thread)
    thread:set("start", threads * 7919)
    threads = threads + 1
end

-- wrk.format() replaces the -H headers when given its own: merge them
local headers

init = function()
    n = start or 0
    headers = { ["Content-Type"] = "application/json" }
    for k, v in pairs(wrk.headers) do
        headers[k] = v
    end
end

request = function()
    local id = ids[n % #ids + 1]
    local sub = subs[math.floor(n / #ids) % 2 + 1]
    n = n + 1
    return wrk.format("PUT", "/leads/" .. id .. "/stage", headers,
        '{"stage": "' .. stage .. '", "substage": "' .. sub .. '"}')
end
