-- The load of `make bench` (scripts/bench.py runs it):
--
--   wrk -s bench/wrk.lua URL -- MODE DATA_FILE
--
-- DATA_FILE is a Lua file returning the seeded data (tokens, polls, logins) written by
-- bench.py. MODE:
--   get    GET of the URL's path (no data file)
--   poll   GET /polls/{id} with a bearer token, rotating over polls and users
--   probe  the same, paced: one request per connection every 10 ms (a latency probe that
--          leaves the CPU to the load it watches)
--   vote   POST /polls/{id}/votes, a distinct (user, poll) pair per request: request k of
--          all threads is user floor(k / polls) on poll k mod polls; stops when none is left
--   login  POST /auth/login, rotating over the seeded users
--
-- At the end it prints one JSON line: requests, duration, latency percentiles (µs) and
-- errors (wrk counts a status >= 400 as a status error; sockets errors besides).

local mode, data
local thread_index, thread_count = 0, 1
local counter = 0
local exhausted = false

local setup_count = 0
local threads = {}
function setup(thread)
    thread:set("index", setup_count)
    setup_count = setup_count + 1
    table.insert(threads, thread)
end

function init(args)
    mode = args[1] or "get"
    if args[2] and args[2] ~= "" then data = dofile(args[2]) end
    thread_index = tonumber(wrk.thread:get("index")) or 0
    thread_count = tonumber(args[3]) or 1
end

local function json_headers(token)
    local headers = { ["Content-Type"] = "application/json", ["Accept"] = "application/json" }
    if token then headers["Authorization"] = "Bearer " .. token end
    return headers
end

function delay()
    if mode == "probe" then return 10 end
    return 0
end

function request()
    local k = thread_index + thread_count * counter
    counter = counter + 1
    if mode == "poll" or mode == "probe" then
        local poll = data.polls[(k % #data.polls) + 1]
        local token = data.tokens[(math.floor(k / #data.polls) % #data.tokens) + 1]
        return wrk.format("GET", "/polls/" .. poll.id, { ["Authorization"] = "Bearer " .. token })
    elseif mode == "vote" then
        local user = math.floor(k / #data.polls) + 1
        if user > #data.tokens then
            -- Every pair is used: no request left that would be a first vote.
            if not exhausted then
                exhausted = true
                wrk.thread:set("exhausted", "1")
                wrk.thread:stop()
            end
            return wrk.format("GET", "/health")
        end
        local poll = data.polls[(k % #data.polls) + 1]
        local candidate = poll.candidates[(user % #poll.candidates) + 1]
        return wrk.format("POST", "/polls/" .. poll.id .. "/votes", json_headers(data.tokens[user]),
            '{"candidateId":"' .. candidate .. '"}')
    elseif mode == "login" then
        local login = data.logins[(k % #data.logins) + 1]
        return wrk.format("POST", "/auth/login", json_headers(nil),
            '{"email":"' .. login.email .. '","password":"' .. login.password .. '"}')
    end
    return wrk.format("GET")
end

function done(summary, latency, requests)
    local any_exhausted = false
    for _, thread in ipairs(threads) do
        if thread:get("exhausted") == "1" then any_exhausted = true end
    end
    local e = summary.errors
    io.write(string.format(
        '{"requests":%d,"durationMicros":%d,"bytes":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d,'
            .. '"mean":%.1f,"statusErrors":%d,"socketErrors":%d,"timeouts":%d,"exhausted":%s}\n',
        summary.requests, summary.duration, summary.bytes,
        latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
        latency.max, latency.mean, e.status, e.connect + e.read + e.write, e.timeout,
        tostring(any_exhausted)))
end
