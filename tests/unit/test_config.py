"""Settings from the environment (feedapp.config), the JWT secret above all."""
import os
import stat

import pytest

from feedapp.config import MIN_SECRET_LENGTH, Config, ConfigError, shared_dev_secret

from .forked import run_forked

GOOD_SECRET = "p" * MIN_SECRET_LENGTH


def env(tmp_path, **values):
    return {"DATA_DIR": str(tmp_path / "var"), **values}


@pytest.mark.parametrize("mode", ["production", "Production", " PRODUCTION "])
def test_production_without_jwt_secret_fails_clearly(tmp_path, mode):
    with pytest.raises(ConfigError) as caught:
        Config.from_env(env(tmp_path, FEEDAPP_ENV=mode))
    message = str(caught.value)
    assert "JWT_SECRET is not set" in message
    assert "FEEDAPP_ENV=production" in message
    assert f"at least {MIN_SECRET_LENGTH} characters" in message
    assert not (tmp_path / "var" / "jwt_secret").exists()  # no secret was generated


def test_production_with_an_empty_jwt_secret_fails(tmp_path):
    with pytest.raises(ConfigError, match="JWT_SECRET is not set"):
        Config.from_env(env(tmp_path, FEEDAPP_ENV="production", JWT_SECRET=""))


@pytest.mark.parametrize("mode", ["production", "development"])
def test_short_jwt_secret_fails_clearly(tmp_path, mode):
    with pytest.raises(ConfigError) as caught:
        Config.from_env(env(tmp_path, FEEDAPP_ENV=mode, JWT_SECRET="p" * (MIN_SECRET_LENGTH - 1)))
    assert str(caught.value) == f"JWT_SECRET must be at least {MIN_SECRET_LENGTH} characters long"


def test_production_with_a_long_enough_secret_starts(tmp_path):
    config = Config.from_env(env(tmp_path, FEEDAPP_ENV="production", JWT_SECRET=GOOD_SECRET))
    assert config.production
    assert config.jwt_secret == GOOD_SECRET
    assert not (tmp_path / "var" / "jwt_secret").exists()


def test_dev_mode_generates_one_secret_and_keeps_it(tmp_path):
    first = Config.from_env(env(tmp_path))
    again = Config.from_env(env(tmp_path))
    direct = shared_dev_secret(tmp_path / "var")

    assert not first.production
    assert len(first.jwt_secret) >= MIN_SECRET_LENGTH
    assert first.jwt_secret == again.jwt_secret == direct
    path = tmp_path / "var" / "jwt_secret"
    assert path.read_text().strip() == first.jwt_secret
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.listdir(tmp_path / "var") == ["jwt_secret"]  # no temporary file left behind


def test_dev_secrets_differ_between_data_dirs(tmp_path):
    assert shared_dev_secret(tmp_path / "a") != shared_dev_secret(tmp_path / "b")


def test_dev_mode_prefers_an_explicit_secret(tmp_path):
    assert Config.from_env(env(tmp_path, JWT_SECRET=GOOD_SECRET)).jwt_secret == GOOD_SECRET
    assert not (tmp_path / "var" / "jwt_secret").exists()


@pytest.mark.parametrize("content", ["", "\n", "short"])
def test_unusable_dev_secret_file_fails_clearly(tmp_path, content):
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "jwt_secret").write_text(content)
    with pytest.raises(ConfigError, match="jwt_secret"):
        Config.from_env(env(tmp_path))


ROUNDS = 100


def _read_secrets(root, index, barrier, results):
    """In each round, all processes ask for the secret of a fresh data dir at the same moment."""
    seen = []
    try:
        for round_ in range(ROUNDS):
            barrier.wait(timeout=30)
            seen.append(Config.from_env({"DATA_DIR": f"{root}/{round_}"}).jwt_secret)
    except BaseException as err:  # noqa: BLE001 - the parent reports it
        barrier.abort()
        seen = repr(err)
    results.put((index, seen))


def test_concurrent_processes_agree_on_one_dev_secret(tmp_path):
    processes = 8
    outcomes, exit_codes = run_forked(_read_secrets, lambda i: (str(tmp_path), i), processes, timeout=60)
    seen = list(outcomes.values())

    assert [s for s in seen if isinstance(s, str)] == []
    assert exit_codes == [0] * processes
    for round_ in range(ROUNDS):
        data_dir = tmp_path / str(round_)
        on_disk = (data_dir / "jwt_secret").read_text().strip()
        assert {s[round_] for s in seen} == {on_disk}
        assert len(on_disk) >= MIN_SECRET_LENGTH
        assert os.listdir(data_dir) == ["jwt_secret"]


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("ACCESS_TOKEN_TTL", "soon", "ACCESS_TOKEN_TTL must be an integer, got 'soon'"),
        ("ACCESS_TOKEN_TTL", "0", "ACCESS_TOKEN_TTL must be at least 1, got 0"),
        ("REFRESH_TOKEN_TTL", "-5", "REFRESH_TOKEN_TTL must be at least 1, got -5"),
        ("L1_MAXSIZE", "1.5", "L1_MAXSIZE must be an integer, got '1.5'"),
        ("L1_REFRESH_WINDOW", "3",
         "L1_REFRESH_WINDOW must be 0 (off) or at least 4 seconds (two 2 s maintenance ticks), got 3"),
        ("L1_REFRESH_WINDOW", "-1", "L1_REFRESH_WINDOW must be at least 0, got -1"),
        ("MAX_SESSIONS_PER_USER", "0", "MAX_SESSIONS_PER_USER must be at least 1, got 0"),
        ("L1_MAX_BYTES", "lots", "L1_MAX_BYTES must be a size like 67108864 or 64mb, got 'lots'"),
        ("L1_MAX_BYTES", "-1", "L1_MAX_BYTES must be a size like 67108864 or 64mb, got '-1'"),
        ("L1_MAX_BYTES", "512kb", "L1_MAX_BYTES must be at least 1048576 bytes (1mb), got '512kb'"),
    ],
)
def test_bad_integers_fail_clearly(tmp_path, name, value, message):
    with pytest.raises(ConfigError) as caught:
        Config.from_env(env(tmp_path, JWT_SECRET=GOOD_SECRET, **{name: value}))
    assert str(caught.value) == message


def test_settings_are_read_from_the_environment(tmp_path):
    config = Config.from_env(
        env(tmp_path, JWT_SECRET=GOOD_SECRET, ACCESS_TOKEN_TTL="60", REFRESH_TOKEN_TTL="120",
            MONGO_URI="memory://", SEED_ON_START="no", LOG_LEVEL="debug")
    )
    assert (config.access_token_ttl, config.refresh_token_ttl) == (60, 120)
    assert config.mongo_uri == "memory://" and not config.embedded_store
    assert config.seed_on_start is False
    assert config.log_level == "DEBUG"
    assert config.data_dir == (tmp_path / "var").absolute()
    assert Config.from_env(env(tmp_path, JWT_SECRET=GOOD_SECRET, L1_REFRESH_WINDOW="0")).l1_refresh_window == 0
    assert Config.from_env(env(tmp_path, JWT_SECRET=GOOD_SECRET)).max_sessions_per_user == 20
    assert Config.from_env(env(tmp_path, JWT_SECRET=GOOD_SECRET)).l1_max_bytes == 32 * 1024 ** 2
    for text, size in (("8388608", 8 * 1024 ** 2), ("8mb", 8 * 1024 ** 2), ("2048KB", 2 * 1024 ** 2), ("1gb", 1024 ** 3)):
        assert Config.from_env(env(tmp_path, JWT_SECRET=GOOD_SECRET, L1_MAX_BYTES=text)).l1_max_bytes == size
    assert Config.from_env(env(tmp_path, JWT_SECRET=GOOD_SECRET, MAX_SESSIONS_PER_USER="3")).max_sessions_per_user == 3


def test_with_overrides_rejects_unknown_settings():
    with pytest.raises(ConfigError, match="unknown settings"):
        Config().with_overrides(jwt_secert="x")
    assert Config().with_overrides(explore_ttl=5).explore_ttl == 5
