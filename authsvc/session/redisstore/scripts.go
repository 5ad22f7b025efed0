package redisstore

import "github.com/redis/go-redis/v9"

// Data layout, with P = KeyPrefix + "{" + policy + "}:" (the hash tag keeps a
// policy's keys in one slot):
//
//	P s:SID     hash: meta (JSON written by Go: id, policy, user, roles, ttl,
//	            created), user, ttl (ms), created, refreshed, expires (ms since
//	            the epoch, by the store's clock), rotations, current (the hex
//	            hashes of the live refresh token and its siblings, space
//	            separated), retired ("HEX:UNTIL" of replaced tokens, oldest first)
//	P t:HEX     string: the session id a refresh token hash belongs to
//	P u:USER    sorted set: the user's session ids, by creation
//	P r:USER    list: the user's token records (JSON admin.Event), newest first
//
// Every key expires with the session (PEXPIRE by the refresh-token TTL), so a
// session Redis does not hold is over. Ending a session publishes
// "POLICY\nSID" on KeyPrefix + "ended".
//
// All changes of sessions run as Lua scripts: atomic across replicas. Each
// script gets the keys it knows before it runs as KEYS (Redis Cluster routes
// it by them; a script with no keys would go to any node); the keys it finds
// on the way (a session's tokens, its user's index) share their slot through
// the hash tag.
//
// In the Sentinel and Cluster modes an end also writes
//
//	P e         string: the time of the latest end of a session of the policy
//
// on the connection of the end, so that the WAIT that follows covers the end,
// or, when a retried end finds nothing left to end, the earlier end it
// retries (see Store.runEnding).

// luaLib is prepended to every script.
const luaLib = `
local function split(s)
  local t = {}
  if s then for w in string.gmatch(s, '%S+') do t[#t + 1] = w end end
  return t
end
local function fmt(n) return string.format('%.0f', n) end
local function hashOf(r) return string.sub(r, 1, 64) end
local function untilOf(r) return tonumber(string.sub(r, 66)) end
-- endSession removes a session, its tokens and its index entry, and
-- publishes its end. It returns 1, or 0 when the session was not held.
local function endSession(pfx, policy, channel, sid)
  local sk = pfx .. 's:' .. sid
  local f = redis.call('HMGET', sk, 'user', 'current', 'retired')
  if not f[1] then return 0 end
  for _, h in ipairs(split(f[2])) do redis.call('DEL', pfx .. 't:' .. h) end
  for _, r in ipairs(split(f[3])) do redis.call('DEL', pfx .. 't:' .. hashOf(r)) end
  redis.call('DEL', sk)
  redis.call('ZREM', pfx .. 'u:' .. f[1], sid)
  redis.call('PUBLISH', channel, policy .. '\n' .. sid)
  return 1
end
local function extend(key, ttl)
  local left = redis.call('PTTL', key)
  if left < ttl then redis.call('PEXPIRE', key, fmt(ttl)) end
end
`

// createScript: KEYS P s:SID, P t:HASH, P u:USER; ARGV pfx, policy, channel,
// sid, hash, now, ttl, meta, user, maxPerUser. Expired and vanished sessions leave the user's index; past
// maxPerUser the oldest sessions end. Returns the ids of the sessions ended.
var createScript = redis.NewScript(luaLib + `
local pfx, policy, channel, sid, h = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local now, ttl = tonumber(ARGV[6]), tonumber(ARGV[7])
local meta, user, maxPerUser = ARGV[8], ARGV[9], tonumber(ARGV[10])
local uk = KEYS[3]
local live, ended = {}, {}
for _, m in ipairs(redis.call('ZRANGE', uk, 0, -1)) do
  local e = redis.call('HGET', pfx .. 's:' .. m, 'expires')
  if not e then
    redis.call('ZREM', uk, m)
  elseif now >= tonumber(e) then
    endSession(pfx, policy, channel, m)
    ended[#ended + 1] = m
  else
    live[#live + 1] = m
  end
end
local i = 1
while #live - i + 1 >= maxPerUser do
  endSession(pfx, policy, channel, live[i])
  ended[#ended + 1] = live[i]
  i = i + 1
end
local score = now
local last = redis.call('ZRANGE', uk, -1, -1, 'WITHSCORES')
if last[2] and tonumber(last[2]) >= score then score = tonumber(last[2]) + 1 end
local sk = KEYS[1]
redis.call('HSET', sk, 'meta', meta, 'user', user, 'ttl', fmt(ttl), 'created', fmt(now),
  'refreshed', '0', 'expires', fmt(now + ttl), 'rotations', '0', 'current', h, 'retired', '')
redis.call('PEXPIRE', sk, fmt(ttl))
redis.call('SET', KEYS[2], sid, 'PX', fmt(ttl))
redis.call('ZADD', uk, fmt(score), sid)
extend(uk, ttl)
return ended
`)

// rotateScript: KEYS P t:HASH, P t:NEWHASH; ARGV pfx, policy, channel, hash,
// newHash, now, grace, maxSiblings, maxRetired. Returns {'ok', meta, refreshed, rotations,
// expires}, {'invalid'} or {'reused', meta}; the rules are those of
// session.Memory.Rotate.
var rotateScript = redis.NewScript(luaLib + `
local pfx, policy, channel, h, nh = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local now, grace = tonumber(ARGV[6]), tonumber(ARGV[7])
local maxSiblings, maxRetired = tonumber(ARGV[8]), tonumber(ARGV[9])
local tk = KEYS[1]
local sid = redis.call('GET', tk)
if not sid then return {'invalid'} end
local sk = pfx .. 's:' .. sid
local f = redis.call('HMGET', sk, 'meta', 'expires', 'current', 'retired', 'ttl', 'user')
if not f[1] then
  redis.call('DEL', tk)
  return {'invalid'}
end
if now >= tonumber(f[2]) then
  endSession(pfx, policy, channel, sid)
  return {'invalid'}
end
local current, retired = split(f[3]), split(f[4])
local function retire(x) retired[#retired + 1] = x .. ':' .. fmt(now + grace) end
local live = false
for _, c in ipairs(current) do if c == h then live = true end end
if live then
  -- The normal case: every live token is replaced and gets the grace period.
  for _, c in ipairs(current) do retire(c) end
  current = {nh}
else
  local till = nil
  for _, r in ipairs(retired) do
    if hashOf(r) == h then till = untilOf(r); break end
  end
  if not till or now >= till then
    endSession(pfx, policy, channel, sid)
    return {'reused', f[1]}
  end
  -- A parallel request with the token just replaced: a sibling of the live token.
  if #current >= maxSiblings then
    retire(current[1])
    table.remove(current, 1)
  end
  current[#current + 1] = nh
end
while #retired > maxRetired do
  redis.call('DEL', pfx .. 't:' .. hashOf(retired[1]))
  table.remove(retired, 1)
end
local ttl = tonumber(f[5])
local expires = now + ttl
redis.call('SET', KEYS[2], sid, 'PX', fmt(ttl))
for _, c in ipairs(current) do
  if c ~= nh then redis.call('PEXPIRE', pfx .. 't:' .. c, fmt(ttl)) end
end
for _, r in ipairs(retired) do redis.call('PEXPIRE', pfx .. 't:' .. hashOf(r), fmt(ttl)) end
local rotations = redis.call('HINCRBY', sk, 'rotations', 1)
redis.call('HSET', sk, 'current', table.concat(current, ' '), 'retired', table.concat(retired, ' '),
  'refreshed', fmt(now), 'expires', fmt(expires))
redis.call('PEXPIRE', sk, fmt(ttl))
extend(pfx .. 'u:' .. f[6], ttl)
return {'ok', f[1], fmt(now), tostring(rotations), fmt(expires)}
`)

// endByTokenScript: KEYS P t:HASH; ARGV pfx, policy, channel, hash. Returns {'ok', meta,
// refreshed, rotations, expires} or {'invalid'}.
var endByTokenScript = redis.NewScript(luaLib + `
local pfx, policy, channel = ARGV[1], ARGV[2], ARGV[3]
local tk = KEYS[1]
local sid = redis.call('GET', tk)
if not sid then return {'invalid'} end
local f = redis.call('HMGET', pfx .. 's:' .. sid, 'meta', 'refreshed', 'rotations', 'expires')
if not f[1] then
  redis.call('DEL', tk)
  return {'invalid'}
end
endSession(pfx, policy, channel, sid)
return {'ok', f[1], f[2], f[3], f[4]}
`)

// endScript: KEYS P s:SID; ARGV pfx, policy, channel, sid. Returns 1 or 0.
var endScript = redis.NewScript(luaLib + `
return endSession(ARGV[1], ARGV[2], ARGV[3], ARGV[4])
`)

// endUserScript: KEYS P u:USER; ARGV pfx, policy, channel, user. Returns the
// ids of the sessions ended.
var endUserScript = redis.NewScript(luaLib + `
local pfx, policy, channel = ARGV[1], ARGV[2], ARGV[3]
local uk = KEYS[1]
local ended = {}
for _, m in ipairs(redis.call('ZRANGE', uk, 0, -1)) do
  if endSession(pfx, policy, channel, m) == 1 then ended[#ended + 1] = m end
end
redis.call('DEL', uk)
return ended
`)

// recordScript: KEYS P r:USER; ARGV event JSON, keep (entries), ttl (ms).
// Pushes an event and keeps the list for at least ttl.
var recordScript = redis.NewScript(luaLib + `
local key = KEYS[1]
redis.call('LPUSH', key, ARGV[1])
redis.call('LTRIM', key, 0, tonumber(ARGV[2]) - 1)
local ttl = tonumber(ARGV[3])
local left = redis.call('PTTL', key)
if left < ttl then redis.call('PEXPIRE', key, fmt(ttl)) end
return 1
`)
