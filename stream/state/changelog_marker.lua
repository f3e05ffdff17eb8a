-- The next flush marker (KEYS[1] = us:cl:at): Redis's time in ms, kept above the last one, so
-- markers only grow whichever worker flushes. Set before the marker is sent: while Redis lives
-- it holds a marker at least as new as the changelog's.
-- Only while Redis still holds the marker the flush started from (ARGV[1]) and the flusher
-- still holds its lease (KEYS[2] = us:cl:lease, ARGV[2] = the owner): a Redis emptied or
-- restored under the flush lost both (the restore deletes every key of the service), and a
-- marker set there would tell the next worker that an empty Redis is up to date. Returns nil.
if redis.call('GET', KEYS[1]) ~= ARGV[1] or redis.call('GET', KEYS[2]) ~= ARGV[2] then
  return nil
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local last = tonumber(ARGV[1])
if now <= last then
  now = last + 1
end
redis.call('SET', KEYS[1], now)
return now
