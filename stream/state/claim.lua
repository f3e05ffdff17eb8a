-- Claim a partition (KEYS[1] = its us:part hash): a new generation above the stored one and
-- above the caller's (ARGV[1]), so a worker that re-claims after Redis went back in time stays
-- above the fences it wrote elsewhere (Cluster). Returns {generation, checkpoint, epoch}.
local gen = tonumber(redis.call('HGET', KEYS[1], 'gen') or '0')
local above = tonumber(ARGV[1])
if above > gen then
  gen = above
end
gen = gen + 1
redis.call('HSET', KEYS[1], 'gen', gen)
local v = redis.call('HMGET', KEYS[1], 'offset', 'epoch')
return {gen, tonumber(v[1] or '-1'), tonumber(v[2] or '0')}
