-- One sliding-window check for one subject (platform::rate_limit; the math is window.rs's).
--
-- KEYS[1]  the subject's counter hash: w (window index), cur, prev
-- ARGV[1]  window length in milliseconds
-- ARGV[2]  events allowed per window
--
-- Returns {allowed (0|1), prev, cur, elapsed_ms}: the counts after this call (a refused
-- event is not counted) and how far into the current window Redis' clock is.
--
-- Time comes from Redis, not from the caller: every replica sees one clock, so a window
-- ends at the same moment for all of them.
redis.replicate_commands() -- needed before a write after TIME on Redis < 5; a no-op since
local window = tonumber(ARGV[1])
local max = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local index = math.floor(now / window)
local elapsed = now - index * window

local state = redis.call('HMGET', KEYS[1], 'w', 'cur', 'prev')
local w = tonumber(state[1])
local cur = tonumber(state[2]) or 0
local prev = tonumber(state[3]) or 0
if w == nil or w < index - 1 then
  prev, cur = 0, 0          -- nothing in the last two windows
elseif w == index - 1 then
  prev, cur = cur, 0        -- a new window: the current one becomes the previous
end                         -- (w >= index: the same window; a clock step back keeps it)

-- The previous window's events count in proportion to how much of it still overlaps
-- the sliding window that ends now.
if prev * (window - elapsed) / window + cur + 1 > max then
  return {0, prev, cur, elapsed}
end
cur = cur + 1
redis.call('HSET', KEYS[1], 'w', string.format('%d', index), 'cur', cur, 'prev', prev)
redis.call('PEXPIRE', KEYS[1], 2 * window)
return {1, prev, cur, elapsed}
