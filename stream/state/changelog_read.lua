-- Read the changes not yet in the changelog (stream/state/changelog.py), with their values, in
-- one atomic call: ARGV = {n, shop_1, dirty_1, ..., shop_n, dirty_n}. An item is 'k<key>' (a
-- whole key), 'z<ledger key>\0<member>' (a ledger entry) or 'f<hash key>\0<field>' (one field).
-- Returns {now_ms, {shop, {{item, version, kind, ttl_ms, value}, ...}}, ...}; kind is 'h'
-- (hash: value = its fields and values), 's' (string), 'l' (list: its elements), 'z' (score),
-- 'f' (field value) or 'n'
-- (gone: a tombstone); value false = gone too.
local t = redis.call('TIME')
local out = {tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)}
local n = tonumber(ARGV[1])
for i = 0, n - 1 do
  local shop, dirty = ARGV[2 + 2 * i], ARGV[3 + 2 * i]
  local flat = redis.call('HGETALL', dirty)
  local items = {}
  for j = 1, #flat, 2 do
    local item, version = flat[j], flat[j + 1]
    if item ~= '#' then
      local kind, value, ttl = item:sub(1, 1), false, -1
      if kind == 'k' then
        local key = item:sub(2)
        local typ = redis.call('TYPE', key)['ok']
        if typ == 'hash' then
          kind, value = 'h', redis.call('HGETALL', key)
        elseif typ == 'string' then
          kind, value = 's', redis.call('GET', key)
        elseif typ == 'list' then
          kind, value = 'l', redis.call('LRANGE', key, 0, -1)
        else
          kind = 'n'
        end
        if kind ~= 'n' then
          ttl = redis.call('PTTL', key)
        end
      else
        local at = item:find('\0', 2, true)
        if kind == 'z' then
          value = redis.call('ZSCORE', item:sub(2, at - 1), item:sub(at + 1))
          ttl = redis.call('PTTL', item:sub(2, at - 1))  -- the ledger's, refreshed with it
        else
          value = redis.call('HGET', item:sub(2, at - 1), item:sub(at + 1))
        end
      end
      items[#items + 1] = {item, version, kind, ttl, value}
    end
  end
  out[#out + 1] = {shop, items}
end
return out
