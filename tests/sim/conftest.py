import pytest

from .world import make_worker


@pytest.fixture
def workers(tmp_path, redis_server, redis_client):
    """Three in-process workers (A, B, C) sharing one real redis-server and one store."""
    made = []
    try:
        for name in ("A", "B", "C"):
            made.append(make_worker(name, tmp_path / "var", redis_server, redis_server.url))
        yield made
    finally:
        for worker in made:
            worker.close()
