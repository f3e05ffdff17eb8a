-- changelog_clear.lua on a Cluster primary (allow-cross-slot-keys), where each shop's index is
-- its slot's (us:cl:shops:{tag}): ARGV = {n, then per shop: index ('' for global marks), shop,
-- dirty hash, index version read, m, item_1, version_1, ..., item_m, version_m}. Returns {the
-- marks cleared, the shops cleared from their index}.
local n, at, cleared, shops = tonumber(ARGV[1]), 2, 0, 0
for _ = 1, n do
  local index, shop, dirty, seen = ARGV[at], ARGV[at + 1], ARGV[at + 2], ARGV[at + 3]
  local m = tonumber(ARGV[at + 4])
  at = at + 5
  for j = 0, m - 1 do
    local item, version = ARGV[at + 2 * j], ARGV[at + 2 * j + 1]
    if redis.call('HGET', dirty, item) == version then
      redis.call('HDEL', dirty, item)
      cleared = cleared + 1
    end
  end
  at = at + 2 * m
  if index ~= '' and redis.call('HGET', index, shop) == seen then
    redis.call('HDEL', index, shop)
    shops = shops + 1
    if redis.call('HLEN', dirty) <= 1 then
      redis.call('DEL', dirty)
    end
  elseif index == '' and redis.call('HLEN', dirty) <= 1 then
    redis.call('DEL', dirty)
  end
end
return {cleared, shops}
