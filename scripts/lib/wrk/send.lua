-- wrk script of scripts/bench-goals.sh: single-recipient sends (POST /sub-accounts/{id}/messages), each with its
-- own Idempotency-Key, from the sub-accounts listed in $BENCH_SENDERS ("<sub-account id> <API key>" per line),
-- taken in turn (each thread starts at its own place, so the connections spread over the sub-accounts).
-- An answer other than 201 is counted, and the first one is printed, at the end.
local threads = {}
local next_id = 1

function setup(thread)
    thread:set("id", next_id)
    next_id = next_id + 1
    table.insert(threads, thread)
end

function init(args)
    senders = {}
    for line in io.lines(os.getenv("BENCH_SENDERS")) do
        local sub, key = line:match("^(%S+)%s+(%S+)$")
        if sub then
            senders[#senders + 1] = { path = "/sub-accounts/" .. sub .. "/messages", auth = "Bearer " .. key }
        end
    end
    nonce = os.getenv("BENCH_NONCE") or "run"
    sent = 0
    errors = 0
    first_error = ""
end

function request()
    sent = sent + 1
    local sender = senders[((id * 37 + sent) % #senders) + 1]
    local number = string.format("316%08d", (id * 1000003 + sent) % 100000000)
    local body = '{"sender":"Bench","text":"Your code is ' .. (sent % 1000000) .. '","recipients":["' .. number .. '"]}'
    return wrk.format("POST", sender.path, {
        ["Authorization"] = sender.auth,
        ["Content-Type"] = "application/json",
        ["Idempotency-Key"] = nonce .. "-" .. id .. "-" .. sent,
    }, body)
end

function response(status, headers, body)
    if status ~= 201 then
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
