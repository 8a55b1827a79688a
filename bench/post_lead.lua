-- POST /leads/ with a fresh name each time
local n = 0

-- wrk.format() replaces the -H headers when given its own: merge them
local headers

init = function()
    headers = { ["Content-Type"] = "application/json" }
    for k, v in pairs(wrk.headers) do
        headers[k] = v
    end
end

request = function()
    n = n + 1
    return wrk.format("POST", "/leads/", headers,
        '{"name": "Bench shop ' .. n .. '", "shop_domain": "bench-' .. n
        .. '.myshopify.com", "value_cents": 4900}')
end
