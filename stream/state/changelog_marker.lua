-- The next flush marker (KEYS[1] = us:cl:at): Redis's time in ms, kept above the last one, so
-- markers only grow whichever worker flushes. Set before the marker is sent: while Redis lives
-- it holds a marker at least as new as the changelog's.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
if now <= last then
  now = last + 1
end
redis.call('SET', KEYS[1], now)
return now
