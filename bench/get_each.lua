-- GET /leads/{id} over many leads (BENCH_LEADS, comma-separated)
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

init = function()
    n = start or 0
end

request = function()
    n = n + 1
    return wrk.format("GET", "/leads/" .. ids[n % #ids + 1])
end
