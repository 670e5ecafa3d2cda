"""feedapp/runtime/bootstrap.py: what the master does before any worker starts (demo seeding here)."""
import logging

import pytest

from feedapp.config import Config
from feedapp.infra.store import connect
from feedapp.repository import Repository
from feedapp.runtime.bootstrap import prepare_deployment


@pytest.fixture
def deployment_env(monkeypatch, tmp_path, redis_server):
    """An embedded store under tmp_path that asks for demo data; Redis is the test server."""
    for name in ("MONGO_URI", "FEEDAPP_ENV", "JWT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {"DATA_DIR": str(tmp_path), "REDIS_URL": redis_server.url,
                        "AUTH_REDIS_URL": redis_server.url, "SEED_ON_START": "1",
                        "SEED_USERS": "3", "SEED_POSTS": "4"}.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def users_in_store() -> int:
    db = connect(Config.from_env())
    try:
        return Repository(db).db.users.count_documents({})
    finally:
        db.close()


def test_development_seeds_an_empty_embedded_store(deployment_env, caplog):
    with caplog.at_level(logging.INFO):
        prepare_deployment(logging.getLogger("test"))
    assert users_in_store() == 3
    assert any("seeded demo data" in r.getMessage() for r in caplog.records)


def test_production_never_seeds_demo_accounts_and_says_so_once(deployment_env, caplog):
    deployment_env.setenv("FEEDAPP_ENV", "production")
    deployment_env.setenv("JWT_SECRET", "p" * 48)
    with caplog.at_level(logging.INFO):
        prepare_deployment(logging.getLogger("test"))
    assert users_in_store() == 0
    said = [r.getMessage() for r in caplog.records if "demo" in r.getMessage()]
    assert said == ["FEEDAPP_ENV=production: no demo accounts are seeded (SEED_ON_START is ignored)"]
