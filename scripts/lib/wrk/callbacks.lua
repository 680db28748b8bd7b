-- wrk script of scripts/bench-goals.sh: delivery reports through the connection's callback path
-- ($BENCH_CALLBACK_PATH, /callbacks/1601/<token>), one DELIVERED per line of $BENCH_REPORTS
-- ("<upstream id> <message id>"). Thread i of $BENCH_THREADS takes lines i, i + threads, …; a thread that has
-- sent its share repeats its last report (kept in the history only; counted) until the harness stops wrk once every
-- message is settled. A thread does not stop itself: that would close connections with reports still in flight.
local threads = {}
local next_id = 1

function setup(thread)
    thread:set("id", next_id)
    next_id = next_id + 1
    table.insert(threads, thread)
end

function init(args)
    local count = tonumber(os.getenv("BENCH_THREADS"))
    local path = os.getenv("BENCH_CALLBACK_PATH")
    local datum = os.date("!%Y%m%d%H%M%S")
    reports = {}
    local line_number = 0
    for line in io.lines(os.getenv("BENCH_REPORTS")) do
        local upstream, message = line:match("^(%S+)%s+(%S+)$")
        if upstream then
            if line_number % count == id - 1 then
                reports[#reports + 1] = path .. "?smsid=" .. upstream .. "&datum=" .. datum
                    .. "&status=DELIVERED&referentie=" .. message
            end
            line_number = line_number + 1
        end
    end
    sent = 0
    repeats = 0
    errors = 0
    first_error = ""
end

function request()
    -- wrk 4.1 calls request() of the first thread once before the run to check it, and never sends that request:
    -- that call must not use up a report. (Were it sent after all, the first report would go twice: harmless.)
    if id == 1 and not checked then
        checked = true
        return wrk.format("GET", reports[1])
    end
    sent = sent + 1
    if sent > #reports then
        repeats = repeats + 1
        return wrk.format("GET", reports[#reports])
    end
    return wrk.format("GET", reports[sent])
end

function response(status, headers, body)
    if status ~= 200 or string.sub(body or "", 1, 2) ~= "OK" then
        errors = errors + 1
        if first_error == "" then first_error = status .. " " .. string.sub(body or "", 1, 200) end
    end
end

function done(summary, latency, requests)
    local total, extra, first = 0, 0, ""
    for _, thread in ipairs(threads) do
        total = total + thread:get("errors")
        extra = extra + thread:get("repeats")
        if first == "" then first = thread:get("first_error") end
    end
    io.write(string.format("bench-errors=%d\nbench-repeats=%d\n", total, extra))
    if first ~= "" then io.write("bench-first-error=" .. first:gsub("\n", " ") .. "\n") end
end
