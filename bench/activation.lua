-- Each wrk thread activates its own serials, BENCH<thread>-<n>, in order: every request is a first activation.
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  vendor, model = args[1], args[2]
  counter = tonumber(args[3]) or 0 -- each measured round starts past the serials earlier rounds used
end

function request()
  counter = counter + 1
  local body = string.format("vendor=%s&model=%s&sn=BENCH%d-%07d", vendor, model, tid, counter)
  return wrk.format("POST", "/provision/activate", {["Content-Type"] = "application/x-www-form-urlencoded"}, body)
end

function done(summary, latency, requests)
  local non200 = summary.errors.status
  io.write(string.format("BENCH non2xx=%d connect=%d read=%d write=%d timeout=%d\n", non200,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout))
end
