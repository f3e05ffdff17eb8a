-- Write restored state (stream/state/changelog_restore.py): ARGV = {argc_1, command_1 ...,
-- argc_2, command_2 ..., ...}, each command run as is. One call per chunk of records: a reply
-- per call, not one per command (the client's parsing was most of a restore's time).
local i, n = 1, 0
while i <= #ARGV do
  local argc = tonumber(ARGV[i])
  redis.call(unpack(ARGV, i + 1, i + argc))
  i = i + argc + 1
  n = n + 1
end
return n
