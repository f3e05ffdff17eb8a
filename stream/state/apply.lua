-- Apply one pre-aggregated partition batch atomically (see docs/state.md, "The apply script").
-- ARGV[1] = JSON payload built by stream/state/batch.py. KEYS = the checkpoint key on one Redis;
-- on Redis Cluster, the progress keys of the shops in the call (declared for routing).
--
-- Phase 1 checks and writes nothing: a fenced or conflicting batch changes no key.
-- Phase 2 applies counters, deduplicated money entries, per-shop progress, the checkpoint.
-- Returns {'ok', money_counted, money_duplicates} | {'fenced', holder_generation}
--       | {'conflict', shop, stored_offset, shop, stored_offset, ...}
local p = cjson.decode(ARGV[1])
local ofield = 'o:' .. p.t .. ':' .. p.p .. ':' .. p.e
local ffield = 'f:' .. p.t .. ':' .. p.p
local gen = p.g

local function num(s)
  return string.format('%.0f', s)
end

if p.ck ~= cjson.null then
  local held = tonumber(redis.call('HGET', p.ck, 'gen') or '0')
  local epoch = tonumber(redis.call('HGET', p.ck, 'epoch') or '0')
  if held > gen or epoch ~= p.e then
    return {'fenced', held}
  end
end

local conflicts = {}
local lasts = {}
for i, s in ipairs(p.s) do
  local v = redis.call('HMGET', s.k, ofield, ffield, 'le')
  lasts[i] = tonumber(v[3] or '0')
  local fence = tonumber(v[2] or '-1')
  if fence > gen then
    return {'fenced', fence}
  end
  local stored = tonumber(v[1] or '-1')
  if stored >= s.f then
    conflicts[#conflicts + 1] = s.id
    conflicts[#conflicts + 1] = num(stored)
  end
end
if #conflicts > 0 then
  table.insert(conflicts, 1, 'conflict')
  return conflicts
end

-- Counter keys carry no TTL: the retention sweep deletes expired days (docs/state.md).
local function apply_hashes(ops)
  for _, op in ipairs(ops) do
    local key, fields = op[1], op[2]
    for i = 1, #fields, 2 do
      redis.call('HINCRBY', key, fields[i], num(fields[i + 1]))
    end
  end
end

local counted, dups = 0, 0
for i, s in ipairs(p.s) do
  apply_hashes(s.h)
  local trim = false
  for _, m in ipairs(s['$']) do
    if redis.call('SET', m.s, '1', 'NX', 'EX', num(p.ttl)) then
      counted = counted + 1
      apply_hashes(m.h)
      if m.hl then
        redis.call('PFADD', m.hl, m.hm)
      end
      if m.lk then
        redis.call('ZADD', m.lk, num(m.ls), m.lm)
        trim = m.lk
      end
    else
      dups = dups + 1
    end
  end
  if trim then
    local t = redis.call('TIME')
    local oldest = (tonumber(t[1]) - p.ttl) * 1000
    redis.call('ZREMRANGEBYSCORE', trim, '-inf', '(' .. num(oldest))
    redis.call('EXPIRE', trim, num(p.ttl))
  end
  if s.le > lasts[i] then
    redis.call('HSET', s.k, ofield, num(s.l), ffield, num(gen), 'le', num(s.le))
  else
    redis.call('HSET', s.k, ofield, num(s.l), ffield, num(gen))
  end
  if s.x ~= 0 then
    redis.call('EXPIRE', s.k, num(p.ttl))
  end
end

if p.ck ~= cjson.null then
  local stored = tonumber(redis.call('HGET', p.ck, 'offset') or '-1')
  if p.co > stored then
    redis.call('HSET', p.ck, 'offset', num(p.co))
  end
end
return {'ok', counted, dups}
