-- Apply one pre-aggregated partition batch atomically (see docs/state.md, "The apply script").
-- ARGV[1] = JSON payload built by stream/state/batch.py. KEYS = the checkpoint key on one Redis;
-- on Redis Cluster, the progress keys of the shops in the call when they share a slot, or the
-- first shop's when the call covers a primary (flag allow-cross-slot-keys: cluster_apply.py).
--
-- Phase 1 checks and writes nothing: a batch that is fenced, rewound, in conflict or would
-- overflow a counter changes no key, and nothing after it can fail (no script stops half-way).
-- Phase 2 applies counters, deduplicated money entries, per-shop progress, the checkpoint.
-- Returns {'ok', money_counted, money_duplicates} | {'fenced', holder_generation}
--       | {'rewound', shop, stored_offset, ...} (Redis holds older progress than the worker
--         last wrote: the checkpoint, p.xc, or a shop's, s.xo; the shops listed are the latter)
--       | {'conflict', shop, stored_offset, shop, stored_offset, ...}
--       | {'overflow', seen_key, ...} (money entries whose amounts would pass the counter limit)
local p = cjson.decode(ARGV[1])
-- With the state changelog on (p.ca, its marker us:cl:at, set before any counting): a Redis
-- without the marker lost its state under this worker (emptied, replaced) or is being restored
-- from the changelog. Write nothing; the claim that follows a rewind restores it first.
if p.ca and redis.call('EXISTS', p.ca) == 0 then
  return {'rewound'}
end
-- On a Cluster each shop's slot has its own marker (s.ca, us:cl:at:{tag}): a primary replaced
-- by an empty one lost its slots' markers with their state.
for _, s in ipairs(p.s) do
  if s.ca and redis.call('EXISTS', s.ca) == 0 then
    return {'rewound'}
  end
end
local ofield = 'o:' .. p.t .. ':' .. p.p .. ':' .. p.e
local ffield = 'f:' .. p.t .. ':' .. p.p
local gen = p.g
local E9 = 1000000000

local function num(s)
  return string.format('%.0f', s)
end

local checkpoint = -1
if p.ck ~= cjson.null then
  local v = redis.call('HMGET', p.ck, 'gen', 'epoch', 'offset')
  local held, epoch = tonumber(v[1] or '0'), tonumber(v[2] or '0')
  checkpoint = tonumber(v[3] or '-1')
  if held > gen or epoch > p.e then
    return {'fenced', held}
  end
  if epoch < p.e or checkpoint < p.xc then
    return {'rewound'}
  end
end

local rewound = {}
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
  if stored < s.xo then
    rewound[#rewound + 1] = s.id
    rewound[#rewound + 1] = num(stored)
  elseif stored >= s.f then
    conflicts[#conflicts + 1] = s.id
    conflicts[#conflicts + 1] = num(stored)
  end
end
if #rewound > 0 then
  table.insert(rewound, 1, 'rewound')
  return rewound
end
if #conflicts > 0 then
  table.insert(conflicts, 1, 'conflict')
  return conflicts
end

-- Money amounts are the only deltas that can approach HINCRBY's limits (-2^63 .. 2^63 - 1):
-- sum each field as phase 2 would (entries already seen are not applied) and refuse the entries
-- that would pass them. Exact: a value is {hi, lo} = hi * 10^9 + lo, 0 <= lo < 10^9, as Lua's
-- doubles are exact only to 2^53.
local function split(hi, lo)
  local carry = math.floor(lo / E9)
  return {hi + carry, lo - carry * E9}
end
local function parse(raw)
  if not raw then
    return {0, 0}
  end
  local sign, digits = 1, raw
  if raw:sub(1, 1) == '-' then
    sign, digits = -1, raw:sub(2)
  end
  local hi = tonumber(digits:sub(1, -10)) or 0
  return split(sign * hi, sign * tonumber(digits:sub(-9)))
end
local function add(v, delta)
  local dh = math.floor(delta / E9)
  return split(v[1] + dh, v[2] + (delta - dh * E9))
end
local function in_range(v)
  local hi, lo = v[1], v[2]
  return (hi < 9223372036 or (hi == 9223372036 and lo <= 854775807))
    and (hi > -9223372037 or (hi == -9223372037 and lo >= 145224192))
end

local totals, marked, overflow = {}, {}, {}
for _, s in ipairs(p.s) do
  for _, m in ipairs(s['$']) do
    if not marked[m.s] and redis.call('EXISTS', m.s) == 0 then
      marked[m.s] = true
      local after, ok = {}, true
      for _, op in ipairs(m.h) do
        local key, fields = op[1], op[2]
        for i = 1, #fields, 2 do
          local id = key .. '\0' .. fields[i]
          local now = after[id] or totals[id] or parse(redis.call('HGET', key, fields[i]))
          after[id] = add(now, fields[i + 1])
          ok = ok and in_range(after[id])
        end
      end
      if ok then
        for id, v in pairs(after) do
          totals[id] = v
        end
      else
        overflow[#overflow + 1] = m.s
      end
    end
  end
end
if #overflow > 0 then
  table.insert(overflow, 1, 'overflow')
  return overflow
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

-- Experiments (docs/state.md, "Exposures"): a subscriber's hash remembers the variation and day
-- of their first exposure in a group and what they did; the exposures hash of that day counts
-- them. Sums of revenue and of its squares are floats (HINCRBYFLOAT never fails for range).
local SEP = '\31'
-- the keys an experiment write changed, for the changelog's marks (nil keys are skipped)
local function changed(items, ...)
  if p.cl then
    for _, key in ipairs({...}) do
      if key then
        items[#items + 1] = 'k' .. key
      end
    end
  end
end
local function flt(x)
  return string.format('%.17g', x)
end

-- ``starts``: group -> the earliest day of this section's new exposures (xf is written once per
-- group and section: per exposure it was 2 of the ~8 commands a first exposure cost).
local function expose(s, x, starts, items)
  local sk, group, var, day, crossed = x[1], x[2], x[3], x[4], x[6]
  local was = redis.call('HMGET', sk, 'v', 'day', 'm', 'p')
  if not was[1] then
    redis.call('HSET', sk, 'v', var, 'day', day)
    redis.call('EXPIREAT', sk, num(x[5]))
    local xk = s.xk .. day .. ':' .. group
    redis.call('HINCRBY', xk, 's' .. SEP .. var, 1)
    if not starts[group] or day < starts[group] then
      starts[group] = day
    end
    -- what they did before this exposure was counted (``p``: an upgrade or downgrade came first)
    local h = was[4] and redis.call('HGETALL', sk) or {}
    for j = 1, #h, 2 do
      local f = h[j]
      if f == 'k' or f == 'g' then
        redis.call('HINCRBY', xk, f .. SEP .. var, 1)
      elseif f:sub(1, 2) == 'r:' then
        local r = tonumber(h[j + 1])
        redis.call('HINCRBYFLOAT', xk, f .. SEP .. var, flt(r))
        redis.call('HINCRBYFLOAT', xk, 'q:' .. f:sub(3) .. SEP .. var, flt(r * r))
      end
    end
    if crossed == 1 then
      redis.call('HSET', sk, 'm', '1')
      redis.call('HINCRBY', xk, 'm' .. SEP .. var, 1)
    end
    changed(items, sk, xk)
  elseif (was[1] ~= var or crossed == 1) and not was[3] then
    redis.call('HSET', sk, 'm', '1')
    redis.call('HINCRBY', s.xk .. was[2] .. ':' .. group, 'm' .. SEP .. was[1], 1)
    changed(items, sk, s.xk .. was[2] .. ':' .. group)
  end
end

local function experiment_money(s, x, items)
  local sk, group, kind = x[1], x[2], x[3]
  local fresh = redis.call('EXISTS', sk) == 0
  local was = redis.call('HMGET', sk, 'v', 'day')
  local xk = was[1] and (s.xk .. was[2] .. ':' .. group)
  if not xk then
    redis.call('HSET', sk, 'p', '1')
  end
  if kind == 'd' then
    if redis.call('HSETNX', sk, 'g', '1') == 1 and xk then
      redis.call('HINCRBY', xk, 'g' .. SEP .. was[1], 1)
    end
  else
    local rf, rev = 'r:' .. x[4], x[5]
    local first = redis.call('HSETNX', sk, 'k', '1')
    local old = tonumber(redis.call('HGET', sk, rf) or '0')
    redis.call('HSET', sk, rf, num(old + rev))
    if xk then
      if first == 1 then
        redis.call('HINCRBY', xk, 'k' .. SEP .. was[1], 1)
      end
      redis.call('HINCRBYFLOAT', xk, rf .. SEP .. was[1], flt(rev))
      redis.call('HINCRBYFLOAT', xk, 'q:' .. x[4] .. SEP .. was[1], flt(2 * old * rev + rev * rev))
    end
  end
  if fresh then
    redis.call('EXPIRE', sk, num(p.ttl))
  end
  changed(items, sk, xk)
end

-- The changelog (p.cl, docs/state.md "Changelog"): every key and ledger entry this call changes
-- is marked dirty in the shop's hash s.dk (item -> the shop's mark version) and the shop in the
-- index p.cl, in this same call, so a crash can never leave a change unmarked.
local function mark(dk, items)
  if #items == 0 then
    return
  end
  local v = redis.call('HINCRBY', dk, '#', 1)
  for i = 1, #items, 256 do
    local args = {}
    for j = i, math.min(i + 255, #items) do
      args[#args + 1] = items[j]
      args[#args + 1] = v
    end
    redis.call('HSET', dk, unpack(args))
  end
end
local function mark_hashes(items, ops)
  if p.cl then
    for _, op in ipairs(ops) do
      items[#items + 1] = 'k' .. op[1]
    end
  end
end

local counted, dups = 0, 0
for i, s in ipairs(p.s) do
  apply_hashes(s.h)
  local items = {}
  mark_hashes(items, s.h)
  if s.xp then
    local starts, any = {}, false
    for _, x in ipairs(s.xp) do
      expose(s, x, starts, items)
    end
    for group, day in pairs(starts) do
      local first = redis.call('HGET', s.xf, group)
      if not first or day < first then
        redis.call('HSET', s.xf, group, day)
      end
      any = true
    end
    if any then
      redis.call('EXPIRE', s.xf, num(p.ttl))
      changed(items, s.xf)
    end
  end
  local trim = false
  for _, m in ipairs(s['$']) do
    if redis.call('SET', m.s, '1', 'NX', 'EX', num(p.ttl)) then
      counted = counted + 1
      apply_hashes(m.h)
      mark_hashes(items, m.h)
      if p.cl then
        items[#items + 1] = 'k' .. m.s
      end
      if m.hl then
        redis.call('PFADD', m.hl, m.hm)
        if p.cl then
          items[#items + 1] = 'k' .. m.hl
        end
      end
      if m.lk then
        redis.call('ZADD', m.lk, num(m.ls), m.lm)
        trim = m.lk
        if p.cl then
          items[#items + 1] = 'z' .. m.lk .. '\0' .. m.lm
        end
      end
      if m.x then
        experiment_money(s, m.x, items)
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
  if p.cl then
    items[#items + 1] = 'k' .. s.k
    mark(s.dk, items)
    redis.call('HINCRBY', s.cl or p.cl, s.id, 1)  -- s.cl: the index of the shop's slot
  end
end

if p.ck ~= cjson.null and p.co > checkpoint then
  redis.call('HSET', p.ck, 'offset', num(p.co))
  if p.cl then
    mark(p.cg, {'k' .. p.ck})
  end
end
return {'ok', counted, dups}
