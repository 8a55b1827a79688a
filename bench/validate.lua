-- POST /crm/validate with a Klaviyo key that the stand-in accepts
local headers

init = function()
    headers = { ["Content-Type"] = "application/json" }
    for k, v in pairs(wrk.headers) do
        headers[k] = v
    end
end

request = function()
    return wrk.format("POST", "/crm/validate", headers,
        '{"crm_type": "klaviyo", "credentials": {"api_key": "'
        .. os.getenv("BENCH_KLAVIYO_KEY") .. '"}}')
end
