"""What operators ask of a worker: is it ready, what do the caches hold, evict this."""
from ..errors import forbidden, validation_error


class Operations:
    def __init__(self, repo, redis, auth_redis, writer, keys, profiles):
        self.repo = repo
        self.redis = redis
        self.auth_redis = auth_redis
        self.writer = writer
        self.keys = keys
        self.profiles = profiles

    def readiness(self) -> dict:
        """{"status": "ok"|"degraded", "mongo": "ok"|"down", "redis": "ok"|"down"}; "redis"
        covers both servers, the cache's and the auth one (the same by default)."""
        mongo = _probe(self.repo.ping)
        redis = "ok" if _probe(self.redis.ping) == _probe(self.auth_redis.ping) == "ok" else "down"
        return {"status": "ok" if mongo == redis == "ok" else "degraded", "mongo": mongo, "redis": redis}

    def require_admin(self, caller_id):
        """403 unless caller_id is an admin (read from the store: a role is never cached)."""
        if not self.profiles.is_admin(caller_id):
            raise forbidden("Only an admin may invalidate the cache")

    def invalidate(self, keys=None, prefix=None) -> int:
        """Evict the keys (or every key under prefix) in client form from Redis and from every
        worker's L1; 422 for a key outside the scheme. Returns how many Redis keys were
        deleted. The caller checks `require_admin` first."""
        if keys is not None:
            return self.writer.invalidate(keys=[self._cache_key(text, "keys") for text in keys])
        return self.writer.invalidate(prefixes=[self._cache_key(prefix, "prefix")])

    def _cache_key(self, text, field):
        try:
            return self.keys.from_client(text)
        except ValueError as err:
            raise validation_error({field: [str(err)]}) from None


def _probe(ping) -> str:
    try:
        ping()
        return "ok"
    except Exception:  # noqa: BLE001 - any failure means "down" here
        return "down"
