-- The broker acknowledged these changes: clear their marks, unless a change came since (the
-- version differs). ARGV = {index, n, then per shop: shop ('' for the global hash), dirty hash,
-- index version read, m, item_1, version_1, ..., item_m, version_m}. Returns the marks cleared.
local index, n, at, cleared = ARGV[1], tonumber(ARGV[2]), 3, 0
for _ = 1, n do
  local shop, dirty, seen, m = ARGV[at], ARGV[at + 1], ARGV[at + 2], tonumber(ARGV[at + 3])
  at = at + 4
  for j = 0, m - 1 do
    local item, version = ARGV[at + 2 * j], ARGV[at + 2 * j + 1]
    if redis.call('HGET', dirty, item) == version then
      redis.call('HDEL', dirty, item)
      cleared = cleared + 1
    end
  end
  at = at + 2 * m
  if shop ~= '' and redis.call('HGET', index, shop) == seen then
    redis.call('HDEL', index, shop)
    if redis.call('HLEN', dirty) <= 1 then
      redis.call('DEL', dirty)
    end
  end
end
return cleared
