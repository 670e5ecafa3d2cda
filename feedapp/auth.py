"""Passwords, tokens, sessions and revocation.

Tokens are HS256 JWTs (PyJWT) signed with JWT_SECRET. Each login opens a session in Redis
(`auth:session:{<user>}:<sid>`, a hash with the user id and the id of the one refresh token
that may still be used) that lives as long as a refresh token. An access token is accepted only
while its session exists and its own id is not in `auth:revoked:<jti>`; both checks are one
pipelined round trip. Refresh rotates the refresh token atomically (a Lua script); presenting
an already rotated refresh token is treated as theft and ends the session. Logout deletes the
session and revokes the access token for the rest of its life, so every worker of every app
server rejects both tokens as soon as logout returns.

A user has at most `max_sessions` sessions: each login adds its session to the user's index
(`auth:sessions:{<user>}`, a sorted set in login order, in the same slot as the user's
sessions) and ends the oldest beyond the limit, in one Lua script, so concurrent logins can
never leave more, and an ended session's access and refresh tokens stop working everywhere at
once. The index forgets sessions that ended otherwise (logout, expiry) at the next login.
"""
import functools
import secrets
import time
from dataclasses import dataclass

import jwt
from werkzeug.security import check_password_hash, generate_password_hash

from .errors import unauthorized

ALGORITHM = "HS256"
# Access tokens whose signature and claims this worker has checked, kept so that a client's
# next request with the same token skips the HMAC and the JSON decoding (about half of what
# authenticating costs); the session and revocation checks still run on every request.
VERIFIED_TOKENS = 4096
# A real hash of a random password: checked when the user is unknown, so that a wrong
# username costs as much time as a wrong password.
_DUMMY_HASH = generate_password_hash(secrets.token_urlsafe(16))

# KEYS[1] = session, KEYS[2] = the user's session index; ARGV = presented refresh jti, new
# refresh jti, session ttl (s). Returns 1 when rotated, 0 when the session is gone, -1 on
# reuse (session ended). The index lives as long as the longest-lived session.
ROTATE_REFRESH = """
local current = redis.call('HGET', KEYS[1], 'refresh_jti')
if not current then return 0 end
if current ~= ARGV[1] then
  redis.call('DEL', KEYS[1])
  return -1
end
redis.call('HSET', KEYS[1], 'refresh_jti', ARGV[2])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[3]))
return 1
"""

# KEYS[1] = the user's session index, KEYS[2] = the new session; ARGV = session id, refresh
# jti, user id, ttl (s), most sessions kept, now (ms), the prefix of the user's session keys
# (same slot). Opens the session, ends the oldest beyond the limit, returns their ids.
OPEN_SESSION = """
local index, prefix = KEYS[1], ARGV[7]
for _, sid in ipairs(redis.call('ZRANGE', index, 0, -1)) do
  if redis.call('EXISTS', prefix .. sid) == 0 then redis.call('ZREM', index, sid) end
end
local order = tonumber(ARGV[6])
local newest = redis.call('ZREVRANGE', index, 0, 0, 'WITHSCORES')
if newest[2] and tonumber(newest[2]) >= order then order = tonumber(newest[2]) + 1 end
redis.call('HSET', KEYS[2], 'user_id', ARGV[3], 'refresh_jti', ARGV[2])
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[4]))
redis.call('ZADD', index, order, ARGV[1])
redis.call('EXPIRE', index, tonumber(ARGV[4]))
local excess = redis.call('ZCARD', index) - tonumber(ARGV[5])
if excess <= 0 then return {} end
local ended = redis.call('ZRANGE', index, 0, excess - 1)
for _, sid in ipairs(ended) do redis.call('DEL', prefix .. sid) end
redis.call('ZREMRANGEBYRANK', index, 0, excess - 1)
return ended
"""


def hash_password(password: str, method: str = "scrypt") -> str:
    """A salted slow hash (werkzeug); `method` sets the cost (PASSWORD_HASH_METHOD)."""
    return generate_password_hash(password, method=method)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Constant-work check: an unknown user (hash None) costs as much as a wrong password."""
    if password_hash is None:
        check_password_hash(_DUMMY_HASH, password)
        return False
    return check_password_hash(password_hash, password)


@dataclass(frozen=True)
class Claims:
    user_id: str
    session_id: str
    token_id: str
    expires_at: int


class TokenService:
    """Issues, checks, rotates and revokes tokens; sessions live in Redis."""

    def __init__(self, secret, redis, keys, access_ttl, refresh_ttl, max_sessions: int = 20):
        self._secret = secret
        self._redis = redis
        self._keys = keys
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        self.max_sessions = max_sessions
        self._verified_access = functools.lru_cache(maxsize=VERIFIED_TOKENS)(self._decode_access)
        self._rotate = redis.register_script(ROTATE_REFRESH)
        self._open = redis.register_script(OPEN_SESSION)

    def login(self, user_id: str) -> dict:
        """Open a session for user_id (ending its oldest beyond max_sessions) and return the
        token response of API.md."""
        session_id = secrets.token_urlsafe(16)
        refresh_jti = secrets.token_urlsafe(16)
        self._open(
            keys=[self._keys.sessions(user_id), self._keys.session(user_id, session_id)],
            args=[session_id, refresh_jti, user_id, self.refresh_ttl, self.max_sessions,
                  int(time.time() * 1000), self._keys.session_prefix(user_id)],
        )
        return self._token_pair(user_id, session_id, refresh_jti)

    def authenticate(self, token: str) -> Claims:
        """Claims of a live access token; raise a 401 APIError otherwise."""
        claims = self._verified_access(token)  # an invalid token raises, and is not kept
        if claims.expires_at <= time.time():  # as PyJWT decides it, for a token kept since
            raise unauthorized("Token has expired")
        with self._redis.pipeline(transaction=False) as pipe:
            pipe.exists(self._keys.session(claims.user_id, claims.session_id))
            pipe.exists(self._keys.revoked(claims.token_id))
            session_alive, revoked = pipe.execute()
        if not session_alive or revoked:
            raise unauthorized("Token has been revoked")
        return claims

    def refresh(self, token: str) -> dict:
        """Rotate a refresh token: new pair, the presented one stops working."""
        claims = self._decode(token, "refresh")
        new_jti = secrets.token_urlsafe(16)
        outcome = self._rotate(
            keys=[self._keys.session(claims.user_id, claims.session_id), self._keys.sessions(claims.user_id)],
            args=[claims.token_id, new_jti, self.refresh_ttl],
        )
        if outcome != 1:
            raise unauthorized("Refresh token is no longer valid")
        return self._token_pair(claims.user_id, claims.session_id, new_jti)

    def logout(self, claims: Claims):
        """End the session and revoke the access token for the rest of its life."""
        remaining = max(1, claims.expires_at - int(time.time()) + 1)
        # Not a transaction: the keys lie in different cluster slots, and neither order nor
        # atomicity matters (either the session's or the revocation's key alone rejects the
        # access token; logout answers 200 only once all are written).
        with self._redis.pipeline(transaction=False) as pipe:
            pipe.delete(self._keys.session(claims.user_id, claims.session_id))
            pipe.zrem(self._keys.sessions(claims.user_id), claims.session_id)
            pipe.set(self._keys.revoked(claims.token_id), 1, ex=remaining)
            pipe.execute()

    def _token_pair(self, user_id, session_id, refresh_jti) -> dict:
        return {
            "access_token": self._encode(user_id, session_id, secrets.token_urlsafe(16), "access", self.access_ttl),
            "refresh_token": self._encode(user_id, session_id, refresh_jti, "refresh", self.refresh_ttl),
            "token_type": "bearer",
            "expires_in": self.access_ttl,
        }

    def _encode(self, user_id, session_id, token_id, kind, ttl) -> str:
        now = int(time.time())
        payload = {"sub": user_id, "sid": session_id, "jti": token_id, "typ": kind, "iat": now, "exp": now + ttl}
        return jwt.encode(payload, self._secret, algorithm=ALGORITHM)

    def _decode_access(self, token: str) -> Claims:
        return self._decode(token, "access")

    def _decode(self, token: str, kind: str) -> Claims:
        try:
            payload = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                options={"require": ["exp", "iat", "sub", "sid", "jti", "typ"]},
            )
        except jwt.ExpiredSignatureError:
            raise unauthorized("Token has expired") from None
        except jwt.InvalidTokenError:
            raise unauthorized("Invalid token") from None
        if payload.get("typ") != kind or not all(
            isinstance(payload[name], str) for name in ("sub", "sid", "jti")
        ):
            raise unauthorized("Invalid token")
        return Claims(payload["sub"], payload["sid"], payload["jti"], int(payload["exp"]))


def bearer_token(header: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header; 401 when absent or malformed."""
    if not header:
        raise unauthorized("Missing bearer token")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 4096:
        raise unauthorized("Malformed Authorization header")
    return token
