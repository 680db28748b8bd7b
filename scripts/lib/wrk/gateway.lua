-- wrk script of scripts/bench-goals.sh: single-recipient sends through the 1601-compatible endpoint
-- (GET /module/gateway.php with klantuser/klantpwd, delivery=ja, as a 1601 integration sends), as $BENCH_USER
-- with $BENCH_PASSWORD (percent-encoded already). An answer that does not start with OK is counted.
local threads = {}
local next_id = 1

function setup(thread)
    thread:set("id", next_id)
    next_id = next_id + 1
    table.insert(threads, thread)
end

function init(args)
    login = "klantuser=" .. os.getenv("BENCH_USER") .. "&klantpwd=" .. os.getenv("BENCH_PASSWORD")
    sent = 0
    errors = 0
    first_error = ""
end

function request()
    sent = sent + 1
    local number = string.format("316%08d", (id * 1000003 + sent) % 100000000)
    return wrk.format("GET", "/module/gateway.php?" .. login .. "&afzender=Bench&naar=" .. number
        .. "&bericht=Code%20" .. (sent % 1000000) .. "&delivery=ja")
end

function response(status, headers, body)
    if status ~= 200 or string.sub(body or "", 1, 2) ~= "OK" then
        errors = errors + 1
        if first_error == "" then first_error = status .. " " .. string.sub(body or "", 1, 200) end
    end
end

function done(summary, latency, requests)
    local total, first = 0, ""
    for _, thread in ipairs(threads) do
        total = total + thread:get("errors")
        if first == "" then first = thread:get("first_error") end
    end
    io.write(string.format("bench-errors=%d\n", total))
    if first ~= "" then io.write("bench-first-error=" .. first:gsub("\n", " ") .. "\n") end
end
