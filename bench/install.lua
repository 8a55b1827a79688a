-- Signed install callbacks, each for a new shop, from the file that
-- bench/run.sh writes ($BENCH_INSTALLS: "<signature>\t<body>" lines).
-- Each wrk thread takes its own share of the lines, in order.

local lines = {}
local next_line = 1
local threads = 0

function setup(thread)
    thread:set("id", threads)
    threads = threads + 1
end

function init(args)
    local all = {}
    for line in io.lines(os.getenv("BENCH_INSTALLS")) do
        all[#all + 1] = line
    end
    -- two threads: even lines for the first, odd for the second
    for i = id + 1, #all, 2 do
        lines[#lines + 1] = all[i]
    end
end

function request()
    local line = lines[next_line]
    next_line = next_line % #lines + 1
    local sig, body = line:match("^([^\t]+)\t(.*)$")
    return wrk.format("POST", "/callbacks/install", {
        ["Content-Type"] = "application/json",
        ["X-CRM-Signature"] = sig,
    }, body)
end
