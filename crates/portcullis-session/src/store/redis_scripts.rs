//! The Redis store's Lua scripts, each one atomic on one key (so they work on a
//! Cluster, where a session's keys live in different slots).

/// Sets the session data only if the session still exists (a revoked session must not
/// be resurrected by a refresh that finished after the revocation).
pub(super) const UPDATE_IF_EXISTS: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'd', ARGV[1])
  return 1
end
return 0
";

/// Replaces a grant's tokens (a new sign-in) and adds a session to it; the grant lives
/// as long as its longest session. KEYS[1] grant; ARGV: sealed, session id, seconds the
/// session has left.
pub(super) const JOIN_GRANT: &str = r"
redis.call('HSET', KEYS[1], 'd', ARGV[1], 's:' .. ARGV[2], '1')
local want = tonumber(ARGV[3])
if redis.call('TTL', KEYS[1]) < want then redis.call('EXPIRE', KEYS[1], want) end
return 1
";

/// Adds a session to an existing grant, leaving its tokens alone; 0 if the grant is
/// gone. KEYS[1] grant; ARGV: session id, seconds the session has left.
pub(super) const JOIN_EXISTING_GRANT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 's:' .. ARGV[1], '1')
local want = tonumber(ARGV[2])
if redis.call('TTL', KEYS[1]) < want then redis.call('EXPIRE', KEYS[1], want) end
return 1
";

/// Writes refreshed tokens only if the grant still holds what the refresh started
/// from: a newer sign-in wins, and an ended grant stays ended. 1 written, 0 replaced,
/// -1 gone. KEYS[1] grant; ARGV: seen, new.
pub(super) const UPDATE_GRANT: &str = r"
local d = redis.call('HGET', KEYS[1], 'd')
if not d then return -1 end
if d ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'd', ARGV[2])
return 1
";

/// Removes a session from its grant, and the grant with its last session.
/// KEYS[1] grant; ARGV[1] session id.
pub(super) const LEAVE_GRANT: &str = r"
redis.call('HDEL', KEYS[1], 's:' .. ARGV[1])
if redis.call('HLEN', KEYS[1]) <= 1 then redis.call('DEL', KEYS[1]) end
return 1
";

/// Ends a grant whose refresh was refused, if it still holds the refused tokens;
/// returns its sessions' fields, or false when it was replaced meanwhile.
/// KEYS[1] grant; ARGV[1] seen.
pub(super) const END_GRANT: &str = r"
local d = redis.call('HGET', KEYS[1], 'd')
if d and d ~= ARGV[1] then return false end
local fields = redis.call('HKEYS', KEYS[1])
redis.call('DEL', KEYS[1])
return fields
";

/// Sets fields of a session's hash only while the session exists (never recreating a
/// revoked one, which would also have no TTL). KEYS[1] session; ARGV: field, value, ….
pub(super) const SET_IF_EXISTS: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for i = 1, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1
";
