-- Applies one part of a batch of interactions: checks that every event that counts is new,
-- then marks each event seen, records the counted views and adds the part's summed
-- increments and counters, all or nothing.
--
-- The input's positions (KEYS and ARGV) are defined, built and documented by
-- `IngestArgs` in ingest.rs, field by field in this order; its unit test pins the layout.
-- Change the two together.
--
-- KEYS: t0 hash, pending counters, the K sorted sets.
-- ARGV: prefix, event TTL, view window, K, K landmarks, N, N event ids, N flags (one
-- string), V, V view keys, V event indices, G, G groups (set index, count, count pairs of
-- video and increment), C, C pairs of counter field and amount.
--
-- Returns {accepted}, {-1, key...} (landmarks moved) or {-2, event index...} (refused
-- events, 0-based); the last two having written nothing.
local prefix = ARGV[1]
local event_ttl = tonumber(ARGV[2])
local window_ms = tonumber(ARGV[3]) * 1000
local k = tonumber(ARGV[4])
local stale = {}
local fresh = {}
for i = 1, k, 1000 do
  local last = math.min(i + 999, k)
  local current = redis.call('HMGET', KEYS[1], unpack(KEYS, 2 + i, 2 + last))
  for j = 1, #current do
    local at = i + j - 1
    if current[j] == false then
      fresh[#fresh + 1] = at
    elseif current[j] ~= ARGV[4 + at] then
      stale[#stale + 1] = KEYS[2 + at]
    end
  end
end
if #stale > 0 then
  table.insert(stale, 1, -1)
  return stale
end

local n = tonumber(ARGV[5 + k])
local ids = 6 + k
local flags = ARGV[ids + n]
local v = tonumber(ARGV[ids + n + 1])
local view_keys = ids + n + 2
local view_events = view_keys + v
local time = redis.call('TIME')
local now_s = tonumber(time[1])
local now_ms = now_s * 1000 + math.floor(tonumber(time[2]) / 1000)
local seen_bucket = math.floor(now_s / event_ttl)
local seen_now = prefix .. 'seen:' .. seen_bucket
local seen_before = prefix .. 'seen:' .. (seen_bucket - 1)
local view_bucket = math.floor(now_ms / window_ms)
local views_now = prefix .. 'views:' .. view_bucket
local views_before = prefix .. 'views:' .. (view_bucket - 1)

local refused = {-2}
for i = 0, n - 1, 1000 do
  local last = math.min(i + 999, n - 1)
  local here = redis.call('SMISMEMBER', seen_now, unpack(ARGV, ids + i, ids + last))
  local before = redis.call('SMISMEMBER', seen_before, unpack(ARGV, ids + i, ids + last))
  for j = 1, #here do
    if (here[j] == 1 or before[j] == 1) and string.byte(flags, i + j) == 49 then
      refused[#refused + 1] = i + j - 1
    end
  end
end
for i = 0, v - 1, 1000 do
  local last = math.min(i + 999, v - 1)
  local here = redis.call('HMGET', views_now, unpack(ARGV, view_keys + i, view_keys + last))
  local before = redis.call('HMGET', views_before, unpack(ARGV, view_keys + i, view_keys + last))
  for j = 1, #here do
    local repeated = here[j] ~= false
    if not repeated and before[j] ~= false then
      repeated = tonumber(string.match(before[j], '^%d+')) + window_ms > now_ms
    end
    if repeated then
      refused[#refused + 1] = tonumber(ARGV[view_events + i + j - 1])
    end
  end
end
if #refused > 1 then
  return refused
end

for _, i in ipairs(fresh) do
  redis.call('HSET', KEYS[1], KEYS[2 + i], ARGV[4 + i])
end
for i = 0, n - 1, 1000 do
  redis.call('SADD', seen_now, unpack(ARGV, ids + i, ids + math.min(i + 999, n - 1)))
end
redis.call('EXPIREAT', seen_now, (seen_bucket + 2) * event_ttl)
if v > 0 then
  local fields = {}
  for i = 0, v - 1 do
    fields[#fields + 1] = ARGV[view_keys + i]
    fields[#fields + 1] = now_ms .. ':' .. ARGV[ids + tonumber(ARGV[view_events + i])]
    if #fields >= 2000 or i == v - 1 then
      redis.call('HSET', views_now, unpack(fields))
      fields = {}
    end
  end
  redis.call('PEXPIREAT', views_now, (view_bucket + 2) * window_ms)
end
local accepted = 0
for i = 1, n do
  if string.byte(flags, i) == 49 then
    accepted = accepted + 1
  end
end
local a = view_events + v
local groups = tonumber(ARGV[a])
a = a + 1
for _ = 1, groups do
  local set = KEYS[2 + tonumber(ARGV[a])]
  local count = tonumber(ARGV[a + 1])
  a = a + 2
  for _ = 1, count do
    redis.call('ZINCRBY', set, ARGV[a + 1], ARGV[a])
    a = a + 2
  end
end
local c = tonumber(ARGV[a])
a = a + 1
for _ = 1, c do
  redis.call('HINCRBY', KEYS[2], ARGV[a], ARGV[a + 1])
  a = a + 2
end
return {accepted}
