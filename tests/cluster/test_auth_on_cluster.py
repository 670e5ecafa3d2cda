"""Sessions, revocation and login limits on a real Redis Cluster: the unit tests of
tests/unit/test_auth.py and test_ratelimit.py, run here against the cluster (conftest.py makes
`redis_client` feedapp's cluster client), plus a check that their keys really are spread."""
from feedapp.cache.keys import Keys
from feedapp.ratelimit import Limit, LoginLimiter
from tests.unit.test_auth import *  # noqa: F401,F403 - the same tests, on the cluster
from tests.unit.test_auth import SECRET, TokenService
from tests.unit.test_ratelimit import (  # noqa: F401
    test_success_gives_the_address_slot_back_without_going_below_zero,
    test_the_window_takes_exactly_its_limit_then_refuses_with_its_ttl,
)


def test_sessions_revocations_and_login_counters_spread_over_every_master(redis_client):
    keys = Keys()
    tokens = TokenService(SECRET, redis_client, keys, 900, 3600)
    claims = [tokens.authenticate(tokens.login(f"user{i}")["access_token"]) for i in range(30)]
    touched = [keys.session(c.user_id, c.session_id) for c in claims] + [keys.revoked(c.token_id) for c in claims]
    assert len({redis_client.get_node_from_key(k).name for k in touched}) == 3
    assert any(redis_client.keyslot(keys.session(c.user_id, c.session_id)) != redis_client.keyslot(keys.revoked(c.token_id))
               for c in claims)  # logout's two keys lie in different slots
    for claim in claims:
        tokens.logout(claim)
    for claim in claims:
        assert redis_client.exists(keys.revoked(claim.token_id)) and not redis_client.exists(keys.session(claim.user_id, claim.session_id))
    limiter = LoginLimiter(redis_client, keys, Limit(3, 60), Limit(3, 60))
    subjects = [f"name{i}" for i in range(20)]
    for subject in subjects:
        limiter.take("account", subject)
    counters = [keys.login_failures("account", s) for s in subjects]
    assert len({redis_client.get_node_from_key(k).name for k in counters}) == 3
    assert [redis_client.get(k) for k in counters] == [b"1"] * 20
