-- wrk script: every request carries the session cookie from $BENCH_COOKIE and the
-- Host from $BENCH_HOST (so cookie domains and nginx server_names behave as in
-- production).
local cookie = os.getenv("BENCH_COOKIE")
local host = os.getenv("BENCH_HOST")
if cookie and cookie ~= "" then
  wrk.headers["Cookie"] = cookie
end
if host and host ~= "" then
  wrk.headers["Host"] = host
end
