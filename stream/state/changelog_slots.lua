-- The changelog's per-slot keys of the slots one Cluster primary serves, in one call (run with
-- allow-cross-slot-keys on that primary: stream/state/changelog_cluster.py). ARGV = {mode,
-- value, marker prefix, dirty-shops prefix, global-marks prefix, tag_1, ..., tag_n}; the keys
-- are prefix .. '{' .. tag .. '}'. Returns {slots without their marker, found}: for mode 'g'
-- the tags whose global marks exist; 's' tag, {shop, version, ...} for each dirty-shops index
-- (markers not checked: 0); 'm' nothing. Modes 'w' (set), 'x' (set where missing) and 'd'
-- (delete) write the markers instead (value: what 'w' and 'x' set).
-- Cost (docs/state.md, "On Redis Cluster"): a call per slot and mode, 'g' two.
local mode, value, at, shops, glob = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local missing, found = 0, {}
for i = 6, #ARGV do
  local t = '{' .. ARGV[i] .. '}'
  if mode == 'w' then
    redis.call('SET', at .. t, value)
  elseif mode == 'x' then
    redis.call('SET', at .. t, value, 'NX')
  elseif mode == 'd' then
    redis.call('DEL', at .. t)
  elseif mode ~= 's' and redis.call('EXISTS', at .. t) == 0 then
    missing = missing + 1
  end
  if mode == 'g' then
    if redis.call('EXISTS', glob .. t) == 1 then
      found[#found + 1] = ARGV[i]
    end
  elseif mode == 's' then
    local index = redis.call('HGETALL', shops .. t)
    if #index > 0 then
      found[#found + 1] = ARGV[i]
      found[#found + 1] = index
    end
  end
end
return {missing, found}
