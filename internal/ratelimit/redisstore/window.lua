-- Fixed-window quota. Mirrors windowStep in ratelimit/algo.go, in microseconds.
-- KEYS[1]: the key, a hash {e = window end (µs since epoch), c = count}.
-- ARGV[1]: window length (µs); ARGV[2]: quota; ARGV[3]: cost.
-- Returns {allowed (0/1), remaining, reset_after (µs), retry_after (µs)}.
--
-- Windows are aligned to multiples of the window length since the Unix epoch.
-- A stored count applies only when its window end is the current one, so a
-- changed window length never carries a count across.
if redis.replicate_commands ~= nil then
  pcall(redis.replicate_commands)
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local n = tonumber(ARGV[3])

local window_end = (math.floor(now / window) + 1) * window
local reset = window_end - now

local count = 0
local st = redis.call('HMGET', KEYS[1], 'e', 'c')
if st[1] and tonumber(st[1]) == window_end then
  count = tonumber(st[2]) or 0
end

if count + n <= limit then
  count = count + n
  if n > 0 then
    redis.call('HSET', KEYS[1], 'e', string.format('%.0f', window_end), 'c', string.format('%.0f', count))
    redis.call('PEXPIRE', KEYS[1], string.format('%.0f', math.ceil(reset / 1000)))
  end
  return {1, limit - count, reset, 0}
end
local remaining = limit - count
if remaining < 0 then
  remaining = 0
end
return {0, remaining, reset, reset}
