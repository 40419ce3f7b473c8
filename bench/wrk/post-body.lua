-- POST the file $BENCH_BODY_FILE as a JSON body on every request, then report like report.lua
-- ($BENCH_REPORT_LUA), for the model-routing scenario.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open(os.getenv("BENCH_BODY_FILE"), "rb"))
wrk.body = f:read("*a")
f:close()
dofile(os.getenv("BENCH_REPORT_LUA"))
