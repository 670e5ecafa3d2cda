"""Settings from the environment, validated once at start with clear messages."""
import os
import secrets
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from .envvars import ConfigError, choice, flag, integer, origins, redis_memory, size_bytes

MIN_SECRET_LENGTH = 32
READ_PREFERENCES = ("primary", "primarypreferred", "secondary", "secondarypreferred", "nearest")


MAINTENANCE_INTERVAL_S = 2.0  # the per-worker maintenance thread's tick (feedapp.runtime.maintenance)
MAINTENANCE_TICKS_PER_WINDOW = 2  # a refresh window spans two ticks, so no entry slips past


def _refresh_window(env, name, default):
    value = integer(env, name, default)
    if 0 < value < MAINTENANCE_TICKS_PER_WINDOW * MAINTENANCE_INTERVAL_S:
        raise ConfigError(
            f"{name} must be 0 (off) or at least {MAINTENANCE_TICKS_PER_WINDOW * MAINTENANCE_INTERVAL_S:g} "
            f"seconds (two {MAINTENANCE_INTERVAL_S:g} s maintenance ticks), got {value}"
        )
    return value


def _write_concern(env, name, default):
    value = (env.get(name) or default).strip()
    if value != "majority" and not (value.isdigit() and int(value) >= 1):
        raise ConfigError(
            f"{name} must be majority or a number of members (at least 1; 0 would not report "
            f"duplicate keys, which feedapp's counters rely on), got {value!r}"
        )
    return value


def _max_staleness(env, name, read_preference):
    value = integer(env, name, -1, minimum=-1)
    if value != -1 and (value < 90 or read_preference == "primary"):
        raise ConfigError(
            f"{name} must be -1 (no limit) or at least 90 seconds (MongoDB's minimum), and only "
            f"with a read preference other than primary; got {value} with {read_preference}"
        )
    return value


@dataclass(frozen=True)
class Config:
    """Every setting the app reads. Build it with `Config.from_env()`."""

    env: str = "development"
    mongo_uri: str | None = None
    mongo_db: str = "feedapp"
    # A real MongoDB (feedapp/infra/mongo.py, docs/deploy.md): write concern, timeouts, and where
    # the explore queries may read (everything else reads the primary).
    mongo_write_concern: str = "majority"
    mongo_journal: bool = True
    mongo_wtimeout_ms: int = 5000
    mongo_timeout_ms: int = 3000  # server selection and TCP connect
    mongo_socket_timeout_ms: int = 10_000
    mongo_explore_read_preference: str = "primary"
    mongo_max_staleness_s: int = -1
    redis_url: str | None = None
    auth_redis_url: str | None = None  # sessions, revocations, login counters; None: redis_url
    cache_redis_maxmemory: str = "256mb"  # the embedded cache redis-server (allkeys-lru)
    data_dir: Path = field(default_factory=lambda: Path("var").absolute())
    jwt_secret: str = ""
    access_token_ttl: int = 900
    refresh_token_ttl: int = 7 * 24 * 3600
    explore_ttl: int = 120
    l1_maxsize: int = 10_000
    l1_max_bytes: int = 32 * 1024 ** 2  # encoded bytes each worker's L1 may hold (see cache/local.py)
    l1_refresh_window: int = 5  # seconds; 0: no refresh-ahead (see cache/local.py)
    max_body_bytes: int = 64 * 1024
    seed_on_start: bool = True
    seed_users: int = 200
    seed_posts: int = 2_000
    log_level: str = "INFO"
    password_hash_method: str = "scrypt"
    cache_mode: str = "tiered"  # tiered (L1+L2+L3) | l2 (no L1) | none (L3 only)
    list_cap: int = 200  # posts kept in each cached timeline / home feed
    fanout_limit: int = 1000  # above this many followers, a post is merged at read time
    lease_ms: int = 5000  # how long a reader's L2 fill lease (and others' wait for it) may last
    # Seconds a worker may trust its caches on one renewal: how far behind a worker may be
    # before it stops trusting them, and how long a write waits for a silent listener.
    trust_lease: float = 1.0
    redis_timeout: float = 1.0
    warm_on_start: bool = True
    warm_users: int = 50
    key_prefix: str = "feedapp:v1"
    login_account_limit: int = 10  # failed logins per account per window (0: no limit)
    login_account_window: int = 15 * 60
    login_address_limit: int = 50  # failed logins per client address per window (0: no limit)
    login_address_window: int = 15 * 60
    register_address_limit: int = 20  # registrations per client address per window (0: no limit)
    register_address_window: int = 60 * 60
    max_sessions_per_user: int = 20  # a login beyond it ends the user's oldest session
    trusted_proxies: int = 0  # X-Forwarded-For hops to trust (werkzeug ProxyFix); 0: none
    cors_origins: tuple = ()  # origins allowed to call the API from a browser
    cors_max_age: int = 600

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def auth_url(self) -> str | None:
        """Where auth state lives: AUTH_REDIS_URL, else the cache's REDIS_URL."""
        return self.auth_redis_url or self.redis_url

    @property
    def embedded_store(self) -> bool:
        return not self.mongo_uri

    @classmethod
    def from_env(cls, environ=None) -> "Config":
        """Read and validate the environment; raise ConfigError on a bad setting."""
        env = os.environ if environ is None else environ
        config = cls(
            env=env.get("FEEDAPP_ENV", "development").strip().lower(),
            **_mongo_settings(env),
            **_redis_settings(env),
            data_dir=Path(env.get("DATA_DIR", "var")).absolute(),
            **_token_settings(env),
            **_cache_settings(env),
            log_level=env.get("LOG_LEVEL", "INFO").upper(),
            password_hash_method=env.get("PASSWORD_HASH_METHOD", "scrypt"),
            **_startup_settings(env),
            **_abuse_limits(env),
            **_http_settings(env),
        )
        return config.with_secret()

    def with_overrides(self, **overrides) -> "Config":
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ConfigError(f"unknown settings: {sorted(unknown)}")
        return replace(self, **overrides)

    def with_secret(self) -> "Config":
        """Check JWT_SECRET; outside production, generate a shared one when it is unset."""
        if self.jwt_secret:
            if len(self.jwt_secret) < MIN_SECRET_LENGTH:
                raise ConfigError(
                    f"JWT_SECRET must be at least {MIN_SECRET_LENGTH} characters long"
                )
            return self
        if self.production:
            raise ConfigError(
                "JWT_SECRET is not set: in production (FEEDAPP_ENV=production) set it to a "
                f"random string of at least {MIN_SECRET_LENGTH} characters, e.g. "
                "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
            )
        return replace(self, jwt_secret=shared_dev_secret(self.data_dir))


def _mongo_settings(env) -> dict:
    explore_read = choice(env, "MONGO_EXPLORE_READ_PREFERENCE", "primary", READ_PREFERENCES)
    return dict(
        mongo_uri=env.get("MONGO_URI") or None,
        mongo_db=env.get("MONGO_DB", "feedapp"),
        mongo_write_concern=_write_concern(env, "MONGO_WRITE_CONCERN", "majority"),
        mongo_journal=flag(env, "MONGO_JOURNAL", True),
        mongo_wtimeout_ms=integer(env, "MONGO_WTIMEOUT_MS", 5000),
        mongo_timeout_ms=integer(env, "MONGO_TIMEOUT_MS", 3000, minimum=1),
        mongo_socket_timeout_ms=integer(env, "MONGO_SOCKET_TIMEOUT_MS", 10_000, minimum=1),
        mongo_explore_read_preference=explore_read,
        mongo_max_staleness_s=_max_staleness(env, "MONGO_MAX_STALENESS_S", explore_read),
    )


def _redis_settings(env) -> dict:
    return dict(
        redis_url=env.get("REDIS_URL") or None,
        auth_redis_url=env.get("AUTH_REDIS_URL") or None,
        cache_redis_maxmemory=redis_memory(env, "CACHE_REDIS_MAXMEMORY", "256mb"),
    )


def _token_settings(env) -> dict:
    return dict(
        jwt_secret=env.get("JWT_SECRET", ""),
        access_token_ttl=integer(env, "ACCESS_TOKEN_TTL", 900, minimum=1),
        refresh_token_ttl=integer(env, "REFRESH_TOKEN_TTL", 7 * 24 * 3600, minimum=1),
    )


def _cache_settings(env) -> dict:
    return dict(
        explore_ttl=integer(env, "EXPLORE_TTL", 120, minimum=1),
        l1_maxsize=integer(env, "L1_MAXSIZE", 50_000, minimum=1),
        l1_max_bytes=size_bytes(env, "L1_MAX_BYTES", 32 * 1024 ** 2, minimum=1024 ** 2),
        l1_refresh_window=_refresh_window(env, "L1_REFRESH_WINDOW", 5),
        cache_mode=choice(env, "CACHE_MODE", "tiered", ("tiered", "l2", "none")),
        list_cap=integer(env, "LIST_CAP", 200, minimum=10),
        fanout_limit=integer(env, "FANOUT_LIMIT", 1000, minimum=1),
        lease_ms=integer(env, "LEASE_MS", 5000, minimum=10),
        trust_lease=integer(env, "TRUST_LEASE_MS", 1000, minimum=200) / 1000,
    )


def _startup_settings(env) -> dict:
    return dict(
        seed_on_start=flag(env, "SEED_ON_START", True),
        seed_users=integer(env, "SEED_USERS", 200),
        seed_posts=integer(env, "SEED_POSTS", 2_000),
        warm_on_start=flag(env, "WARM_ON_START", True),
        warm_users=integer(env, "WARM_USERS", 50),
    )


def _abuse_limits(env) -> dict:
    return dict(
        login_account_limit=integer(env, "LOGIN_ACCOUNT_LIMIT", 10),
        login_account_window=integer(env, "LOGIN_ACCOUNT_WINDOW", 15 * 60, minimum=1),
        login_address_limit=integer(env, "LOGIN_ADDRESS_LIMIT", 50),
        login_address_window=integer(env, "LOGIN_ADDRESS_WINDOW", 15 * 60, minimum=1),
        register_address_limit=integer(env, "REGISTER_ADDRESS_LIMIT", 20),
        register_address_window=integer(env, "REGISTER_ADDRESS_WINDOW", 60 * 60, minimum=1),
        max_sessions_per_user=integer(env, "MAX_SESSIONS_PER_USER", 20, minimum=1),
    )


def _http_settings(env) -> dict:
    return dict(
        trusted_proxies=integer(env, "TRUSTED_PROXIES", 0),
        cors_origins=origins(env, "CORS_ORIGINS"),
        cors_max_age=integer(env, "CORS_MAX_AGE", 600),
    )


def shared_dev_secret(data_dir: Path) -> str:
    """Return the development secret under data_dir, creating it once.

    Every worker (and every restart) must sign with the same key. The secret is written to a
    private temporary file and hard-linked into place, so a reader sees either no file or the
    whole secret, and the first process to link wins.
    """
    path = Path(data_dir) / "jwt_secret"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        tmp = path.with_name(f".jwt_secret.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    secret = path.read_text().strip()
    if len(secret) < MIN_SECRET_LENGTH:
        raise ConfigError(f"{path} holds no usable secret: delete it (a new one is made) or set JWT_SECRET")
    return secret
