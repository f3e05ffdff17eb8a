-- The changelog's per-slot keys of the slots one Cluster primary serves, in one call (run with
-- allow-cross-slot-keys on that primary: stream/state/changelog_cluster.py). ARGV = {mode,
-- marker prefix, dirty-shops prefix, global-marks prefix, tag_1, ..., tag_n}; the keys are
-- prefix .. '{' .. tag .. '}'. Returns {slots without their marker, found}: for mode 'g' the
-- tags whose global marks exist; 's' tag, {shop, version, ...} for each dirty-shops index;
-- 'n' the shops and global items pending; 'm' nothing.
local mode, at, shops, glob = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local missing, found, pending = 0, {}, 0
for i = 5, #ARGV do
  local t = '{' .. ARGV[i] .. '}'
  if redis.call('EXISTS', at .. t) == 0 then
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
  elseif mode == 'n' then
    pending = pending + redis.call('HLEN', shops .. t) + math.max(0, redis.call('HLEN', glob .. t) - 1)
  end
end
if mode == 'n' then
  return {missing, pending}
end
return {missing, found}
