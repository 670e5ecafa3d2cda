"""POST /api/auth/register is rate-limited per client address (feedapp/ratelimit.py)."""
import pytest

from feedapp import create_app
from feedapp.config import Config, ConfigError

from .helpers import assert_error

REGISTER = "/api/auth/register"
LIMIT, WINDOW = 3, 3600


@pytest.fixture
def config(config):
    return config.with_overrides(register_address_limit=LIMIT, register_address_window=WINDOW)


def register(client, username, address="10.0.0.1", **changes):
    body = {"username": username, "email": f"{username}@example.com", "password": "password123", **changes}
    return client.post(REGISTER, json=body, environ_base={"REMOTE_ADDR": address})


def assert_429(response):
    error = assert_error(response, 429, "too_many_requests")
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= WINDOW
    assert error["details"] == {"scope": "address", "retry_after": retry_after}


def test_an_address_registers_up_to_the_limit_then_gets_429_and_nothing_is_created(client, users_count):
    for i in range(LIMIT):
        assert register(client, f"user{i}").status_code == 201
    assert_429(register(client, "one_more"))
    assert users_count() == LIMIT
    assert register(client, "elsewhere", address="10.0.0.2").status_code == 201  # other addresses are not limited


def test_taken_names_count_too_each_costs_a_password_hash(client):
    assert register(client, "taken").status_code == 201
    for _ in range(LIMIT - 1):
        assert_error(register(client, "taken"), 409, "conflict")
    assert_429(register(client, "fresh_name"))


def test_invalid_bodies_take_no_slot(client):
    for _ in range(2 * LIMIT):
        assert_error(register(client, "x"), 400, "validation_error")  # username too short
    assert register(client, "valid_name").status_code == 201


def test_one_ipv6_client_is_its_64(client):
    for i in range(LIMIT):
        assert register(client, f"six{i}", address=f"2001:db8:1:2::{i + 1}").status_code == 201
    assert_429(register(client, "six_more", address="2001:db8:1:2:ffff::9"))
    assert register(client, "next_net", address="2001:db8:1:3::1").status_code == 201


def test_a_limit_of_zero_turns_it_off(config, redis_client):
    unlimited = create_app(config.with_overrides(register_address_limit=0))
    unlimited.extensions["feedapp"].start()
    try:
        client = unlimited.test_client()
        for i in range(LIMIT + 2):
            assert register(client, f"free{i}").status_code == 201
    finally:
        unlimited.extensions["feedapp"].close()


def test_register_limits_come_from_the_environment():
    env = {"JWT_SECRET": "s" * 40}
    default = Config.from_env(env)
    assert (default.register_address_limit, default.register_address_window) == (20, 3600)
    custom = Config.from_env({**env, "REGISTER_ADDRESS_LIMIT": "5", "REGISTER_ADDRESS_WINDOW": "60"})
    assert (custom.register_address_limit, custom.register_address_window) == (5, 60)
    for name, bad in (("REGISTER_ADDRESS_LIMIT", "-1"), ("REGISTER_ADDRESS_WINDOW", "0"),
                      ("REGISTER_ADDRESS_LIMIT", "many")):
        with pytest.raises(ConfigError, match=name):
            Config.from_env({**env, name: bad})
