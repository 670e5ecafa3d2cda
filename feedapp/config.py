"""Settings from the environment, validated once at start with clear messages."""
import os
import re
import secrets
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

MIN_SECRET_LENGTH = 32
READ_PREFERENCES = ("primary", "primarypreferred", "secondary", "secondarypreferred", "nearest")


MAINTENANCE_INTERVAL_S = 2.0  # the per-worker maintenance thread's tick (feedapp.runtime.maintenance)
MAINTENANCE_TICKS_PER_WINDOW = 2  # a refresh window spans two ticks, so no entry slips past


class ConfigError(RuntimeError):
    """A setting is missing or wrong; the message says which and how to fix it."""


def _int(env, name, default, minimum=0):
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _choice(env, name, default, choices):
    value = (env.get(name) or default).strip().lower()
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _refresh_window(env, name, default):
    value = _int(env, name, default)
    if 0 < value < MAINTENANCE_TICKS_PER_WINDOW * MAINTENANCE_INTERVAL_S:
        raise ConfigError(
            f"{name} must be 0 (off) or at least {MAINTENANCE_TICKS_PER_WINDOW * MAINTENANCE_INTERVAL_S:g} "
            f"seconds (two {MAINTENANCE_INTERVAL_S:g} s maintenance ticks), got {value}"
        )
    return value


def _bool(env, name, default):
    raw = env.get(name)
    if raw in (None, ""):
        return default
    return raw.strip().lower() in ("1", "true", "yes", "on")


def _memory(env, name, default):
    value = (env.get(name) or default).strip().lower()
    if re.fullmatch(r"\d+(b|kb|mb|gb)?", value) is None:
        raise ConfigError(f"{name} must be a size like 256mb or 1gb (0: no limit), got {value!r}")
    return value


_UNITS = {"": 1, "b": 1, "kb": 1024, "mb": 1024 ** 2, "gb": 1024 ** 3}


def _bytes(env, name, default: int, minimum: int) -> int:
    """A size in bytes, written as a number of bytes or with a unit (kb, mb, gb: powers of 1024)."""
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    match = re.fullmatch(r"(\d+)\s*(b|kb|mb|gb)?", raw)
    if match is None:
        raise ConfigError(f"{name} must be a size like 67108864 or 64mb, got {raw!r}")
    value = int(match[1]) * _UNITS[match[2] or ""]
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum} bytes ({minimum // 1024 ** 2}mb), got {raw!r}")
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
    value = _int(env, name, -1, minimum=-1)
    if value != -1 and (value < 90 or read_preference == "primary"):
        raise ConfigError(
            f"{name} must be -1 (no limit) or at least 90 seconds (MongoDB's minimum), and only "
            f"with a read preference other than primary; got {value} with {read_preference}"
        )
    return value


def _origins(env, name) -> tuple:
    """A comma-separated allow-list of exact origins (scheme://host[:port]); "*" is refused."""
    origins = tuple(o.strip().rstrip("/").lower() for o in (env.get(name) or "").split(",") if o.strip())
    for origin in origins:
        if re.fullmatch(r"https?://[^/\s,*]+", origin) is None:
            raise ConfigError(
                f"{name} must list origins like https://app.example.com, separated by commas; got {origin!r}"
            )
    return origins


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
        explore_read = _choice(env, "MONGO_EXPLORE_READ_PREFERENCE", "primary", READ_PREFERENCES)
        config = cls(
            env=env.get("FEEDAPP_ENV", "development").strip().lower(),
            mongo_uri=env.get("MONGO_URI") or None,
            mongo_db=env.get("MONGO_DB", "feedapp"),
            mongo_write_concern=_write_concern(env, "MONGO_WRITE_CONCERN", "majority"),
            mongo_journal=_bool(env, "MONGO_JOURNAL", True),
            mongo_wtimeout_ms=_int(env, "MONGO_WTIMEOUT_MS", 5000),
            mongo_timeout_ms=_int(env, "MONGO_TIMEOUT_MS", 3000, minimum=1),
            mongo_socket_timeout_ms=_int(env, "MONGO_SOCKET_TIMEOUT_MS", 10_000, minimum=1),
            mongo_explore_read_preference=explore_read,
            mongo_max_staleness_s=_max_staleness(env, "MONGO_MAX_STALENESS_S", explore_read),
            redis_url=env.get("REDIS_URL") or None,
            auth_redis_url=env.get("AUTH_REDIS_URL") or None,
            cache_redis_maxmemory=_memory(env, "CACHE_REDIS_MAXMEMORY", "256mb"),
            data_dir=Path(env.get("DATA_DIR", "var")).absolute(),
            jwt_secret=env.get("JWT_SECRET", ""),
            access_token_ttl=_int(env, "ACCESS_TOKEN_TTL", 900, minimum=1),
            refresh_token_ttl=_int(env, "REFRESH_TOKEN_TTL", 7 * 24 * 3600, minimum=1),
            explore_ttl=_int(env, "EXPLORE_TTL", 120, minimum=1),
            l1_maxsize=_int(env, "L1_MAXSIZE", 10_000, minimum=1),
            l1_max_bytes=_bytes(env, "L1_MAX_BYTES", 32 * 1024 ** 2, minimum=1024 ** 2),
            l1_refresh_window=_refresh_window(env, "L1_REFRESH_WINDOW", 5),
            seed_on_start=_bool(env, "SEED_ON_START", True),
            seed_users=_int(env, "SEED_USERS", 200),
            seed_posts=_int(env, "SEED_POSTS", 2_000),
            log_level=env.get("LOG_LEVEL", "INFO").upper(),
            password_hash_method=env.get("PASSWORD_HASH_METHOD", "scrypt"),
            cache_mode=_choice(env, "CACHE_MODE", "tiered", ("tiered", "l2", "none")),
            list_cap=_int(env, "LIST_CAP", 200, minimum=10),
            fanout_limit=_int(env, "FANOUT_LIMIT", 1000, minimum=1),
            lease_ms=_int(env, "LEASE_MS", 5000, minimum=10),
            trust_lease=_int(env, "TRUST_LEASE_MS", 1000, minimum=200) / 1000,
            warm_on_start=_bool(env, "WARM_ON_START", True),
            warm_users=_int(env, "WARM_USERS", 50),
            login_account_limit=_int(env, "LOGIN_ACCOUNT_LIMIT", 10),
            login_account_window=_int(env, "LOGIN_ACCOUNT_WINDOW", 15 * 60, minimum=1),
            login_address_limit=_int(env, "LOGIN_ADDRESS_LIMIT", 50),
            login_address_window=_int(env, "LOGIN_ADDRESS_WINDOW", 15 * 60, minimum=1),
            register_address_limit=_int(env, "REGISTER_ADDRESS_LIMIT", 20),
            register_address_window=_int(env, "REGISTER_ADDRESS_WINDOW", 60 * 60, minimum=1),
            max_sessions_per_user=_int(env, "MAX_SESSIONS_PER_USER", 20, minimum=1),
            trusted_proxies=_int(env, "TRUSTED_PROXIES", 0),
            cors_origins=_origins(env, "CORS_ORIGINS"),
            cors_max_age=_int(env, "CORS_MAX_AGE", 600),
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
