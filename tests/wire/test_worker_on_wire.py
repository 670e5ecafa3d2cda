"""A worker over the wire server: closing it lets go of the MongoDB client."""
import pytest
from pymongo.errors import InvalidOperation

from feedapp.runtime.worker import build_worker


def test_close_closes_the_mongodb_client(config):
    res = build_worker(config)
    res.repo.ping()
    client = res.repo.db.client

    res.close()

    with pytest.raises(InvalidOperation):
        client.admin.command("ping")
