-- PUT /leads/{id} over many leads (BENCH_LEADS, comma-separated), each
-- request a new company, so that every one is a real change: version,
-- audit row and, with a CRM connected, a sync job
local ids = {}
for id in string.gmatch(os.getenv("BENCH_LEADS"), "[^,]+") do
    ids[#ids + 1] = id
end

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
    n = n + 1
    return wrk.format("PUT", "/leads/" .. id, headers,
        '{"company": "Company ' .. n .. '"}')
end
