-- The partition's log restarted below its checkpoint (KEYS[1] = its us:part hash): a new epoch
-- counted from offset 0, unless another worker claimed it since (a generation above ARGV[1]).
-- Returns {generation, resume offset (-1: claimed by another), epoch}.
local gen = tonumber(redis.call('HGET', KEYS[1], 'gen') or '0')
local epoch = tonumber(redis.call('HGET', KEYS[1], 'epoch') or '0')
if gen > tonumber(ARGV[1]) then
  return {gen, -1, epoch}
end
redis.call('HSET', KEYS[1], 'epoch', epoch + 1)
redis.call('HDEL', KEYS[1], 'offset')
return {gen, 0, epoch + 1}
