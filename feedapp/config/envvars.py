"""One setting read from the environment: typed and checked, with a ConfigError that names the
setting and says what it accepts. An unset or empty variable takes the default."""
import re


class ConfigError(RuntimeError):
    """A setting is missing or wrong; the message says which and how to fix it."""


def integer(env, name, default, minimum=0):
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


def choice(env, name, default, choices):
    value = (env.get(name) or default).strip().lower()
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def flag(env, name, default):
    raw = env.get(name)
    if raw in (None, ""):
        return default
    return raw.strip().lower() in ("1", "true", "yes", "on")


def redis_memory(env, name, default):
    """A size as redis-server's maxmemory takes it (256mb, 1gb; 0: no limit), kept as written."""
    value = (env.get(name) or default).strip().lower()
    if re.fullmatch(r"\d+(b|kb|mb|gb)?", value) is None:
        raise ConfigError(f"{name} must be a size like 256mb or 1gb (0: no limit), got {value!r}")
    return value


_UNITS = {"": 1, "b": 1, "kb": 1024, "mb": 1024 ** 2, "gb": 1024 ** 3}


def size_bytes(env, name, default: int, minimum: int) -> int:
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


def origins(env, name) -> tuple:
    """A comma-separated allow-list of exact origins (scheme://host[:port]); "*" is refused."""
    listed = tuple(o.strip().rstrip("/").lower() for o in (env.get(name) or "").split(",") if o.strip())
    for origin in listed:
        if re.fullmatch(r"https?://[^/\s,*]+", origin) is None:
            raise ConfigError(
                f"{name} must list origins like https://app.example.com, separated by commas; got {origin!r}"
            )
    return listed
