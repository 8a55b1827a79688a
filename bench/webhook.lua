-- Signed webhook events from the file that bench/scale.sh writes before
-- each round ($BENCH_WEBHOOKS: "<path>\t<Header: value>\t...\t<body>"
-- lines, each event with an id of its own).  Each wrk thread sends its own
-- share of the lines, in order, each once; a thread that runs out starts
-- over and counts the repeats ("reused"), which the script reports as a
-- failure of the round.  The answers are counted: 202 with a status other
-- than "duplicate" (accepted, a new event), 202 "duplicate", and anything
-- else.

local requests = {}
local sent = 0
accepted, duplicate, other, reused = 0, 0, 0, 0

local threads = {}

function setup(thread)
    thread:set("id", #threads)
    threads[#threads + 1] = thread
end

function init(args)
    local i = 0
    for line in io.lines(os.getenv("BENCH_WEBHOOKS")) do
        -- two threads: even lines for the first, odd for the second
        if i % 2 == id then
            local fields = {}
            for field in line:gmatch("[^\t]+") do
                fields[#fields + 1] = field
            end
            local headers = {}
            for k = 2, #fields - 1 do
                local name, value = fields[k]:match("^([^:]+):%s*(.*)$")
                headers[name] = value
            end
            requests[#requests + 1] = wrk.format("POST", fields[1], headers,
                                                 fields[#fields])
        end
        i = i + 1
    end
end

function request()
    sent = sent + 1
    if sent > #requests then
        reused = reused + 1
    end
    return requests[(sent - 1) % #requests + 1]
end

function response(status, headers, body)
    if status ~= 202 then
        other = other + 1
    elseif body:find('"status"%s*:%s*"duplicate"') then
        duplicate = duplicate + 1
    else
        accepted = accepted + 1
    end
end

function done(summary, latency, requests)
    local a, d, o, r = 0, 0, 0, 0
    for _, thread in ipairs(threads) do
        a = a + thread:get("accepted")
        d = d + thread:get("duplicate")
        o = o + thread:get("other")
        r = r + thread:get("reused")
    end
    io.write(string.format("webhooks: accepted %d duplicate %d other %d reused %d\n",
                           a, d, o, r))
end
