-- Moves a single server's ranker state from the layout before the shards
-- (`{p}trending:{window}:{scope}`, one `{p}trending:t0`, `{p}counters:*`) to the current
-- one (crate::store): the sets to `{p}{trending.{window}}:{scope}`, their landmarks and
-- the counters into the server's one shard. Once, at start. Run only on a single server:
-- the old keys never existed on a cluster, and this script names keys it was not given.
--
-- ARGV[1]: the prefix, ARGV[2]: the server's shard tag. Returns the number of sorted sets
-- moved.
local p = ARGV[1]
local t0 = ARGV[2] .. ':t0'
local moved = 0
local old_t0 = p .. 'trending:t0'
local entries = redis.call('HGETALL', old_t0)
for i = 1, #entries, 2 do
  local key, landmark = entries[i], entries[i + 1]
  local window, scope = string.match(string.sub(key, #p + 1), '^trending:(%a+):(.+)$')
  if window then
    local new = p .. '{trending.' .. window .. '}:' .. scope
    if redis.call('EXISTS', new) == 0 and redis.call('HEXISTS', t0, new) == 0 then
      if redis.call('EXISTS', key) == 1 then
        redis.call('RENAME', key, new)
        moved = moved + 1
      end
      redis.call('HSET', t0, new, landmark)
    end
  end
end
redis.call('DEL', old_t0)
-- Counters not yet reported: pending ones are added to the new pending hash; a report
-- taken and not yet confirmed keeps its id (media applies a report id once).
local counters = ARGV[2] .. ':counters:'
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
