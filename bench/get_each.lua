-- GET $BENCH_PATH<id> over many ids (BENCH_IDS, comma-separated): leads
-- (/leads/), links (/r/)
local path = os.getenv("BENCH_PATH")
local ids = {}
for id in string.gmatch(os.getenv("BENCH_IDS"), "[^,]+") do
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
    return wrk.format("GET", path .. ids[n % #ids + 1])
end
