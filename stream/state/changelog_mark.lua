-- Mark changes made outside the apply script (subscriber snapshots, settings, write keys) for
-- the changelog, in the same transaction as the change: KEYS[1] = the dirty hash, ARGV = {index
-- ('' for the global hash), shop, item, ...}.
local v = redis.call('HINCRBY', KEYS[1], '#', 1)
for i = 3, #ARGV do
  redis.call('HSET', KEYS[1], ARGV[i], v)
end
if ARGV[1] ~= '' then
  redis.call('HINCRBY', ARGV[1], ARGV[2], 1)
end
return v
