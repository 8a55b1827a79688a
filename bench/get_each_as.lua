-- GETs from the file $BENCH_REQUESTS, one "<token>\t<path>" a line: each
-- request as the account that token names (a lead read by its owner, a
-- summary by its account), round robin over the lines.

local requests = {}
local n = 0

-- each wrk thread starts at its own place in the list
local threads = 0
setup = function(thread)
    thread:set("start", threads * 7919)
    threads = threads + 1
end

init = function()
    for line in io.lines(os.getenv("BENCH_REQUESTS")) do
        local token, path = line:match("^([^\t]+)\t(.*)$")
        requests[#requests + 1] = wrk.format("GET", path,
            { ["Authorization"] = "Bearer " .. token })
    end
    n = start or 0
end

request = function()
    n = n + 1
    return requests[n % #requests + 1]
end
