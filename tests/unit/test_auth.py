"""Passwords, tokens, sessions and revocation (feedapp.auth) against a real redis-server."""
import base64
import json
import time
from concurrent.futures import ThreadPoolExecutor

import jwt
import pytest

from feedapp.auth import ALGORITHM, Claims, TokenService, bearer_token, hash_password, verify_password
from feedapp.cache.keys import Keys
from feedapp.errors import APIError

SECRET = "unit-test-secret-" + "s" * 50
ACCESS_TTL = 900
REFRESH_TTL = 3600


@pytest.fixture
def keys():
    return Keys("feedapp:test")


@pytest.fixture
def tokens(redis_client, keys):
    return TokenService(SECRET, redis_client, keys, ACCESS_TTL, REFRESH_TTL)


def assert_unauthorized(call, *args, message=None):
    with pytest.raises(APIError) as caught:
        call(*args)
    assert caught.value.status == 401
    assert caught.value.code == "unauthorized"
    assert caught.value.headers == {"WWW-Authenticate": "Bearer"}
    if message is not None:
        assert caught.value.message == message
    return caught.value


def payload_of(token):
    return jwt.decode(token, options={"verify_signature": False})


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def craft(claims, secret=SECRET, algorithm=ALGORITHM):
    return jwt.encode(claims, secret, algorithm=algorithm)


def claims_like(token, **changes):
    return {**payload_of(token), **changes}


# --- passwords -------------------------------------------------------------------------------


def test_password_hash_round_trip():
    hashed = hash_password("correct horse")
    assert hashed != "correct horse"
    assert verify_password(hashed, "correct horse") is True
    assert verify_password(hashed, "wrong horse") is False


def test_verify_password_with_no_hash_is_false():
    assert verify_password(None, "anything") is False
    assert verify_password(None, "") is False


# --- login and authenticate ------------------------------------------------------------------


def test_login_returns_the_token_response(tokens):
    pair = tokens.login("user-1")

    assert set(pair) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert pair["token_type"] == "bearer"
    assert pair["expires_in"] == ACCESS_TTL
    access, refresh = payload_of(pair["access_token"]), payload_of(pair["refresh_token"])
    assert (access["typ"], refresh["typ"]) == ("access", "refresh")
    assert access["sub"] == refresh["sub"] == "user-1"
    assert access["sid"] == refresh["sid"]
    assert access["jti"] != refresh["jti"]
    assert access["exp"] - access["iat"] == ACCESS_TTL
    assert refresh["exp"] - refresh["iat"] == REFRESH_TTL
    assert jwt.get_unverified_header(pair["access_token"])["alg"] == "HS256"


def test_authenticate_accepts_a_live_access_token(tokens):
    pair = tokens.login("user-1")
    claims = tokens.authenticate(pair["access_token"])

    payload = payload_of(pair["access_token"])
    assert claims == Claims("user-1", payload["sid"], payload["jti"], payload["exp"])
    assert abs(claims.expires_at - (time.time() + ACCESS_TTL)) < 5


def test_each_login_opens_its_own_session(tokens):
    first, second = tokens.login("u"), tokens.login("u")
    assert payload_of(first["access_token"])["sid"] != payload_of(second["access_token"])["sid"]
    tokens.logout(tokens.authenticate(first["access_token"]))
    assert tokens.authenticate(second["access_token"]).user_id == "u"


# --- rejected tokens -------------------------------------------------------------------------


def test_expired_access_token_is_rejected(tokens):
    token = tokens.login("u")["access_token"]
    now = int(time.time())
    expired = craft(claims_like(token, iat=now - 100, exp=now - 10))
    assert_unauthorized(tokens.authenticate, expired, message="Token has expired")


def test_token_with_a_short_ttl_expires(redis_client, keys):
    short = TokenService(SECRET, redis_client, keys, access_ttl=1, refresh_ttl=REFRESH_TTL)
    token = short.login("u")["access_token"]
    short.authenticate(token)
    time.sleep(2.1)
    assert_unauthorized(short.authenticate, token, message="Token has expired")


def test_a_token_is_verified_once_per_worker_and_still_checked_against_its_session(tokens, monkeypatch):
    token = tokens.login("u")["access_token"]
    tokens.authenticate(token)
    decoded = []
    monkeypatch.setattr(jwt, "decode", lambda *a, **k: decoded.append(a) or pytest.fail("decoded again"))
    assert tokens.authenticate(token).user_id == "u"
    assert decoded == []
    tokens.logout(tokens.authenticate(token))
    assert_unauthorized(tokens.authenticate, token, message="Token has been revoked")


def test_tampered_payload_is_rejected(tokens):
    token = tokens.login("user-1")["access_token"]
    header, _payload, signature = token.split(".")
    forged = b64(json.dumps(claims_like(token, sub="admin-user")).encode())
    assert_unauthorized(tokens.authenticate, f"{header}.{forged}.{signature}", message="Invalid token")


def test_tampered_signature_is_rejected(tokens):
    token = tokens.login("u")["access_token"]
    header, payload, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=="))
    raw[0] ^= 0x01
    assert_unauthorized(tokens.authenticate, f"{header}.{payload}.{b64(bytes(raw))}", message="Invalid token")
    assert_unauthorized(tokens.authenticate, f"{header}.{payload}.", message="Invalid token")


def test_alg_none_token_is_rejected(tokens):
    token = tokens.login("u")["access_token"]
    header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = b64(json.dumps(payload_of(token)).encode())
    unsigned = f"{header}.{payload}."
    # the crafted token does carry valid claims: PyJWT reads it when told to skip the signature
    assert jwt.decode(unsigned, options={"verify_signature": False})["sid"] == payload_of(token)["sid"]
    assert_unauthorized(tokens.authenticate, unsigned, message="Invalid token")
    assert_unauthorized(tokens.authenticate, f"{header}.{payload}.{token.split('.')[2]}", message="Invalid token")


def test_token_signed_with_another_secret_is_rejected(tokens):
    token = tokens.login("u")["access_token"]
    assert_unauthorized(tokens.authenticate, craft(payload_of(token), secret="another-secret-" + "o" * 40))


def test_token_signed_with_another_hmac_algorithm_is_rejected(tokens):
    token = tokens.login("u")["access_token"]
    assert_unauthorized(tokens.authenticate, craft(payload_of(token), algorithm="HS512"))


def test_refresh_token_is_not_an_access_token_and_vice_versa(tokens):
    pair = tokens.login("u")
    assert_unauthorized(tokens.authenticate, pair["refresh_token"], message="Invalid token")
    assert_unauthorized(tokens.refresh, pair["access_token"], message="Invalid token")
    # neither mistake ended the session
    assert tokens.authenticate(pair["access_token"]).user_id == "u"
    assert "access_token" in tokens.refresh(pair["refresh_token"])


@pytest.mark.parametrize("missing", ["exp", "iat", "sub", "sid", "jti", "typ"])
def test_token_missing_a_claim_is_rejected(tokens, missing):
    claims = payload_of(tokens.login("u")["access_token"])
    del claims[missing]
    assert_unauthorized(tokens.authenticate, craft(claims))


@pytest.mark.parametrize("claim", ["sid", "jti"])
def test_token_with_non_string_ids_is_rejected(tokens, claim):
    claims = payload_of(tokens.login("u")["access_token"])
    assert_unauthorized(tokens.authenticate, craft({**claims, claim: ["x"]}))


def test_token_for_an_unknown_session_is_rejected(tokens):
    claims = payload_of(tokens.login("u")["access_token"])
    assert_unauthorized(tokens.authenticate, craft({**claims, "sid": "no-such-session"}), message="Token has been revoked")


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "e30.e30.", "x" * 5000])
def test_garbage_is_rejected(tokens, garbage):
    assert_unauthorized(tokens.authenticate, garbage)
    assert_unauthorized(tokens.refresh, garbage)


# --- logout ----------------------------------------------------------------------------------


def test_logout_revokes_the_access_and_the_refresh_token(tokens):
    pair = tokens.login("u")
    tokens.logout(tokens.authenticate(pair["access_token"]))

    assert_unauthorized(tokens.authenticate, pair["access_token"], message="Token has been revoked")
    assert_unauthorized(tokens.refresh, pair["refresh_token"], message="Refresh token is no longer valid")


def test_logout_revokes_the_access_token_even_if_a_session_of_that_id_came_back(tokens, redis_client, keys):
    pair = tokens.login("u")
    claims = tokens.authenticate(pair["access_token"])
    tokens.logout(claims)
    redis_client.hset(keys.session(claims.user_id, claims.session_id), mapping={"user_id": "u", "refresh_jti": "x"})

    assert_unauthorized(tokens.authenticate, pair["access_token"], message="Token has been revoked")


def test_session_ttl_equals_the_refresh_ttl(tokens, redis_client, keys):
    pair = tokens.login("u")
    key = keys.session("u", payload_of(pair["access_token"])["sid"])
    assert REFRESH_TTL - 2 <= redis_client.ttl(key) <= REFRESH_TTL
    assert redis_client.hget(key, "user_id") == b"u"
    assert redis_client.hget(key, "refresh_jti") == payload_of(pair["refresh_token"])["jti"].encode()

    redis_client.expire(key, 10)
    tokens.refresh(pair["refresh_token"])
    assert REFRESH_TTL - 2 <= redis_client.ttl(key) <= REFRESH_TTL  # rotation renews the session


def test_revoked_key_lives_as_long_as_the_access_token(tokens, redis_client, keys):
    pair = tokens.login("u")
    claims = tokens.authenticate(pair["access_token"])
    tokens.logout(claims)
    ttl = redis_client.ttl(keys.revoked(claims.token_id))
    remaining = claims.expires_at - time.time()
    assert remaining - 2 <= ttl <= remaining + 2
    assert redis_client.exists(keys.session(claims.user_id, claims.session_id)) == 0

    soon = Claims("u", "s", "short-lived", int(time.time()) + 30)
    tokens.logout(soon)
    assert 28 <= redis_client.ttl(keys.revoked("short-lived")) <= 32

    gone = Claims("u", "s", "already-expired", int(time.time()) - 100)
    tokens.logout(gone)
    assert 0 < redis_client.ttl(keys.revoked("already-expired")) <= 1


# --- sessions per user -----------------------------------------------------------------------


@pytest.fixture
def three_per_user(redis_client, keys):
    return TokenService(SECRET, redis_client, keys, ACCESS_TTL, REFRESH_TTL, max_sessions=3)


def live(tokens, pairs) -> list:
    """Which of the pairs' access tokens are still accepted."""
    alive = []
    for i, pair in enumerate(pairs):
        try:
            tokens.authenticate(pair["access_token"])
            alive.append(i)
        except APIError:
            pass
    return alive


def test_a_login_past_the_limit_ends_the_oldest_session(three_per_user):
    pairs = [three_per_user.login("u") for _ in range(4)]
    assert live(three_per_user, pairs) == [1, 2, 3]
    assert_unauthorized(three_per_user.authenticate, pairs[0]["access_token"], message="Token has been revoked")
    assert_unauthorized(three_per_user.refresh, pairs[0]["refresh_token"], message="Refresh token is no longer valid")
    three_per_user.refresh(pairs[1]["refresh_token"])  # the others still work


def test_each_user_has_a_limit_of_their_own(three_per_user):
    mine = [three_per_user.login("u") for _ in range(3)]
    theirs = [three_per_user.login("v") for _ in range(3)]
    assert live(three_per_user, mine) == live(three_per_user, theirs) == [0, 1, 2]


def test_ended_sessions_leave_room(three_per_user, redis_client, keys):
    pairs = [three_per_user.login("u") for _ in range(3)]
    three_per_user.logout(three_per_user.authenticate(pairs[1]["access_token"]))
    redis_client.delete(keys.session("u", payload_of(pairs[2]["access_token"])["sid"]))  # as if expired
    pairs += [three_per_user.login("u") for _ in range(2)]
    assert live(three_per_user, pairs) == [0, 3, 4]


def test_refreshing_renews_the_session_index_with_the_session(three_per_user, redis_client, keys):
    pair = three_per_user.login("u")
    assert REFRESH_TTL - 2 <= redis_client.ttl(keys.sessions("u")) <= REFRESH_TTL
    redis_client.expire(keys.sessions("u"), 10)
    three_per_user.refresh(pair["refresh_token"])
    assert REFRESH_TTL - 2 <= redis_client.ttl(keys.sessions("u")) <= REFRESH_TTL


def test_concurrent_logins_never_leave_more_than_the_limit(three_per_user):
    with ThreadPoolExecutor(max_workers=8) as pool:
        pairs = list(pool.map(lambda _: three_per_user.login("u"), range(24)))
    assert len(live(three_per_user, pairs)) == 3


# --- refresh ---------------------------------------------------------------------------------


def test_refresh_rotates_the_pair(tokens):
    first = tokens.login("u")
    second = tokens.refresh(first["refresh_token"])

    assert set(second) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    new = tokens.authenticate(second["access_token"])
    assert new.user_id == "u"
    assert new.session_id == payload_of(first["access_token"])["sid"]
    third = tokens.refresh(second["refresh_token"])
    assert tokens.authenticate(third["access_token"]).user_id == "u"


def test_reusing_a_rotated_refresh_token_ends_the_session(tokens):
    first = tokens.login("u")
    other_session = tokens.login("u")
    second = tokens.refresh(first["refresh_token"])

    assert_unauthorized(tokens.refresh, first["refresh_token"], message="Refresh token is no longer valid")

    # theft assumed: the whole session is gone, the newest tokens included
    assert_unauthorized(tokens.refresh, second["refresh_token"])
    assert_unauthorized(tokens.authenticate, second["access_token"])
    assert_unauthorized(tokens.authenticate, first["access_token"])
    # other sessions of the same user are untouched
    assert tokens.authenticate(other_session["access_token"]).user_id == "u"
    assert "access_token" in tokens.refresh(other_session["refresh_token"])


def test_expired_refresh_token_is_rejected(tokens):
    pair = tokens.login("u")
    now = int(time.time())
    expired = craft(claims_like(pair["refresh_token"], iat=now - 100, exp=now - 1))
    assert_unauthorized(tokens.refresh, expired, message="Token has expired")


def test_forged_refresh_token_does_not_end_the_session(tokens):
    pair = tokens.login("u")
    forged = craft(claims_like(pair["refresh_token"], jti="guess"), secret="another-secret-" + "o" * 40)
    assert_unauthorized(tokens.refresh, forged, message="Invalid token")
    assert tokens.authenticate(pair["access_token"]).user_id == "u"


# --- the Authorization header ----------------------------------------------------------------


@pytest.mark.parametrize(
    "header, token",
    [
        ("Bearer abc.def.ghi", "abc.def.ghi"),
        ("bearer abc", "abc"),
        ("BEARER abc", "abc"),
        ("Bearer   abc  ", "abc"),
        ("Bearer " + "t" * 4096, "t" * 4096),
    ],
)
def test_bearer_token_parses(header, token):
    assert bearer_token(header) == token


@pytest.mark.parametrize(
    "header, message",
    [
        (None, "Missing bearer token"),
        ("", "Missing bearer token"),
        ("Bearer", "Malformed Authorization header"),
        ("Bearer ", "Malformed Authorization header"),
        ("Bearer    ", "Malformed Authorization header"),
        ("Bearerabc", "Malformed Authorization header"),
        ("Basic dXNlcjpwYXNz", "Malformed Authorization header"),
        ("Token abc", "Malformed Authorization header"),
        (" Bearer abc", "Malformed Authorization header"),
        ("Bearer " + "t" * 4097, "Malformed Authorization header"),
    ],
)
def test_bearer_token_rejects(header, message):
    assert_unauthorized(bearer_token, header, message=message)
