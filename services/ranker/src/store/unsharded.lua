-- Moves a single server's ranker state from the layout before the window shards
-- (`{p}trending:{window}:{scope}`, one `{p}trending:t0`, `{p}counters:*`) to the sharded
-- one (crate::store), once, at start. Run only on a single server: the old keys never
-- existed on a cluster, and this script names keys it was not given.
--
-- ARGV[1]: the prefix. Returns the number of sorted sets moved.
local p = ARGV[1]
local moved = 0
local old_t0 = p .. 'trending:t0'
local entries = redis.call('HGETALL', old_t0)
for i = 1, #entries, 2 do
  local key, t0 = entries[i], entries[i + 1]
  local window, scope = string.match(string.sub(key, #p + 1), '^trending:(%a+):(.+)$')
  if window then
    local shard = p .. '{trending.' .. window .. '}'
    local new = shard .. ':' .. scope
    if redis.call('EXISTS', new) == 0 and redis.call('HEXISTS', shard .. ':t0', new) == 0 then
      if redis.call('EXISTS', key) == 1 then
        redis.call('RENAME', key, new)
        moved = moved + 1
      end
      redis.call('HSET', shard .. ':t0', new, t0)
    end
  end
end
redis.call('DEL', old_t0)
-- Counters not yet reported: pending ones are added to the new pending hash; a report
-- taken and not yet confirmed keeps its id (media applies a report id once).
local counters = p .. '{trending.hour}:counters:'
local pending = redis.call('HGETALL', p .. 'counters:pending')
for i = 1, #pending, 2 do
  redis.call('HINCRBY', counters .. 'pending', pending[i], pending[i + 1])
end
redis.call('DEL', p .. 'counters:pending')
if redis.call('EXISTS', p .. 'counters:flushing') == 1
   and redis.call('EXISTS', counters .. 'flushing') == 0 then
  redis.call('RENAME', p .. 'counters:flushing', counters .. 'flushing')
  if redis.call('EXISTS', p .. 'counters:flushing-id') == 1 then
    redis.call('RENAME', p .. 'counters:flushing-id', counters .. 'flushing-id')
  end
end
return moved
