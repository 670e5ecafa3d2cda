"""Login brute-force limits and registration limits, counted in the auth Redis.

Two fixed windows guard `POST /api/auth/login`: failed attempts per account (the user id when
the login names a known user, else the normalized login name, so unknown and known names
behave alike) and per client address (IPv6 clients by their /64, which one client controls
whole). An attempt first *takes* a slot in both windows with one atomic Lua call each; a full
window refuses the attempt before any password is checked and answers `429 too_many_requests`
with `Retry-After`. A successful login gives its address slot back and clears its account's
failures, so only failures stay counted; a failure keeps both slots. Taking before checking
means concurrent guesses can never overshoot a limit.

`POST /api/auth/register` has one fixed window per client address: every registration that
passes validation takes a slot (each costs a full password hash, whether or not the name is
free) and none is given back.

Counters live under `<prefix>:auth:login:…` and `<prefix>:auth:register:…` with the window as
TTL, in the auth Redis (no eviction), so flooding the cache cannot wipe them. Redis down: the
error reaches the 503 handler, as every other login would without its session store.
"""
import ipaddress
import math
from dataclasses import dataclass

from .errors import APIError

# KEYS[1] = counter; ARGV = limit, window (s). Returns {1, count} when a slot was taken,
# {0, seconds until the window ends} when the window is full.
TAKE = """
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count >= tonumber(ARGV[1]) then
  local ttl = redis.call('TTL', KEYS[1])
  if ttl < 0 then
    redis.call('EXPIRE', KEYS[1], ARGV[2])
    ttl = tonumber(ARGV[2])
  end
  return {0, ttl}
end
count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return {1, count}
"""

# KEYS[1] = counter: give one slot back (never below zero, never extending the window).
GIVE_BACK = """
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count > 1 then return redis.call('DECR', KEYS[1]) end
redis.call('DEL', KEYS[1])
return 0
"""


@dataclass(frozen=True)
class Limit:
    """At most `attempts` failures per `window` seconds; attempts 0 switches the limit off."""

    attempts: int
    window: int


def too_many_requests(scope: str, retry_after: int,
                      message: str = "Too many failed login attempts; try again later") -> APIError:
    """429 in API.md's error shape, with Retry-After in seconds."""
    return APIError(
        429, "too_many_requests", message,
        details={"scope": scope, "retry_after": retry_after},
        headers={"Retry-After": str(retry_after)},
    )


def address_subject(remote_addr: str | None) -> str:
    """The client address a limit is kept for: IPv4 as is, IPv6 by its /64 network."""
    try:
        address = ipaddress.ip_address((remote_addr or "").split("%", 1)[0])
    except ValueError:
        return remote_addr or "unknown"
    if address.version == 6:
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


class WindowLimiter:
    """Fixed windows of `action` per (scope, subject): `take` a slot before the costly work."""

    def __init__(self, redis, keys, action: str, limits: dict, refusal: str):
        self._keys = keys
        self._action = action
        self._limits = limits
        self._refusal = refusal
        self._take = redis.register_script(TAKE)
        self._redis = redis

    def take(self, scope: str, subject: str) -> None:
        """Take one attempt for `subject` in `scope`; 429 when its window is full."""
        limit = self._limits[scope]
        if limit.attempts <= 0:
            return
        taken, value = self._take(keys=[self._key(scope, subject)], args=[limit.attempts, limit.window])
        if not taken:
            raise too_many_requests(scope, max(1, math.ceil(value)), self._refusal)

    def _key(self, scope, subject) -> str:
        return self._keys.attempts(self._action, scope, subject)


class LoginLimiter(WindowLimiter):
    """Counts failed logins per account and per address (scopes "account" and "address");
    refuses attempts over a limit."""

    def __init__(self, redis, keys, per_account: Limit, per_address: Limit):
        super().__init__(redis, keys, "login", {"account": per_account, "address": per_address},
                         "Too many failed login attempts; try again later")
        self._give_back = redis.register_script(GIVE_BACK)

    def succeeded(self, account: str, address: str) -> None:
        """A login succeeded: its address slot is given back and its account's failures cleared."""
        if self._limits["address"].attempts > 0:
            self._give_back(keys=[self._key("address", address)])
        if self._limits["account"].attempts > 0:
            self._redis.delete(self._key("account", account))


class RegistrationLimiter(WindowLimiter):
    """Counts registrations per client address (scope "address"); refuses those over the limit."""

    def __init__(self, redis, keys, per_address: Limit):
        super().__init__(redis, keys, "register", {"address": per_address},
                         "Too many registrations from this address; try again later")
