"""A worker's resources over the wire server: closing them lets go of the MongoDB client."""
import pytest
from pymongo.errors import InvalidOperation

from feedapp.runtime.worker import Resources


def test_close_closes_the_mongodb_client(config):
    res = Resources(config)
    res.repo.ping()
    client = res.repo.db.client

    res.close()

    with pytest.raises(InvalidOperation):
        client.admin.command("ping")
