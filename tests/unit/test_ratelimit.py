"""feedapp/ratelimit.py pieces that need no app: addresses, settings, the Lua window."""
import pytest

from feedapp.cache.keys import Keys
from feedapp.config import Config, ConfigError
from feedapp.errors import APIError
from feedapp.ratelimit import Limit, LoginLimiter, address_subject


@pytest.mark.parametrize("remote, subject", [
    ("203.0.113.9", "203.0.113.9"),
    ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
    ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),  # same /64: same client
    ("::ffff:203.0.113.9", "203.0.113.9"),
    ("fe80::1%eth0", "fe80::/64"),
    (None, "unknown"),
    ("not an address", "not an address"),
])
def test_address_subject(remote, subject):
    assert address_subject(remote) == subject


def test_limits_come_from_the_environment():
    env = {"JWT_SECRET": "s" * 40}
    default = Config.from_env(env)
    assert (default.login_account_limit, default.login_account_window) == (10, 900)
    assert (default.login_address_limit, default.login_address_window) == (50, 900)
    assert default.trusted_proxies == 0
    custom = Config.from_env({**env, "LOGIN_ACCOUNT_LIMIT": "5", "LOGIN_ADDRESS_WINDOW": "60", "TRUSTED_PROXIES": "1"})
    assert (custom.login_account_limit, custom.login_address_window, custom.trusted_proxies) == (5, 60, 1)
    for name, bad in (("LOGIN_ACCOUNT_LIMIT", "-1"), ("LOGIN_ADDRESS_WINDOW", "0"), ("TRUSTED_PROXIES", "x")):
        with pytest.raises(ConfigError, match=name):
            Config.from_env({**env, name: bad})


def test_auth_redis_url_defaults_to_redis_url():
    env = {"JWT_SECRET": "s" * 40, "REDIS_URL": "redis://cache:6379/0"}
    assert Config.from_env(env).auth_url == "redis://cache:6379/0"
    assert Config.from_env({**env, "AUTH_REDIS_URL": "redis://auth:6379/0"}).auth_url == "redis://auth:6379/0"
    with pytest.raises(ConfigError, match="CACHE_REDIS_MAXMEMORY"):
        Config.from_env({**env, "CACHE_REDIS_MAXMEMORY": "lots"})


def test_the_window_takes_exactly_its_limit_then_refuses_with_its_ttl(redis_client):
    limiter = LoginLimiter(redis_client, Keys(), Limit(2, 60), Limit(0, 60))
    limiter.take("account", "a")
    limiter.take("account", "a")
    with pytest.raises(APIError) as refused:
        limiter.take("account", "a")
    assert refused.value.status == 429 and 59 <= int(refused.value.headers["Retry-After"]) <= 60
    limiter.take("account", "b")  # another account has its own window
    for _ in range(100):
        limiter.take("address", "x")  # a limit of 0 is off and counts nothing
    assert not list(redis_client.scan_iter(match="*login:address*"))


def test_success_gives_the_address_slot_back_without_going_below_zero(redis_client):
    keys = Keys()
    limiter = LoginLimiter(redis_client, keys, Limit(5, 60), Limit(5, 60))
    limiter.take("address", "x")
    limiter.take("account", "a")
    limiter.succeeded("a", "x")
    limiter.succeeded("a", "x")
    assert redis_client.get(keys.login_failures("address", "x")) is None
    assert redis_client.get(keys.login_failures("account", "a")) is None
