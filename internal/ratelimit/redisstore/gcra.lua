-- GCRA decision. Mirrors gcraStep in ratelimit/algo.go, in microseconds.
-- KEYS[1]: the key, holding the theoretical arrival time (TAT, µs since epoch).
-- ARGV[1]: emission interval (µs); ARGV[2]: burst; ARGV[3]: cost.
-- Returns {allowed (0/1), remaining, reset_after (µs), retry_after (µs)}.
--
-- Lua numbers are doubles: every value here stays below 2^53 (times in µs
-- are ~1.8e15; limits are validated by the caller), so the arithmetic is exact.
if redis.replicate_commands ~= nil then
  -- Needed before a write that follows TIME on Redis 3.2-4.x; a no-op later.
  pcall(redis.replicate_commands)
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local n = tonumber(ARGV[3])

local tat = nil
local stored = redis.call('GET', KEYS[1])
if stored then
  tat = tonumber(stored)
end
if tat == nil or tat < now then
  tat = now
end

local new_tat = tat + n * interval
local allow_at = new_tat - burst * interval
if now >= allow_at then
  if new_tat > now then
    local ttl = math.ceil((new_tat - now) / 1000)
    redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', string.format('%.0f', ttl))
  end
  return {1, math.floor((now - allow_at) / interval), new_tat - now, 0}
end
local remaining = math.floor((now - (tat - burst * interval)) / interval)
if remaining < 0 then
  remaining = 0
end
return {0, remaining, tat - now, allow_at - now}
