"""Fixtures of the unit tests: a fresh database and a Repository over it.

`mongo_db` is mongomock, the embedded store (feedapp.infra.docstore) and a MongoDB over the wire
protocol (`wire` tests: SecantusDB or TEST_MONGO_URI, through feedapp's own client): every
repository test runs on all three, so the embedded store answers as the references do.
"""
import itertools
import sys

import mongomock
import pytest

from feedapp.config import Config
from feedapp.infra import store
from feedapp.infra.mongo import connect_mongo
from feedapp.repository import Repository


@pytest.fixture(params=["mongomock", "embedded", pytest.param("wire", marks=pytest.mark.wire)])
def mongo_db(request, tmp_path):
    if request.param == "mongomock":
        return mongomock.MongoClient()["t"]
    if request.param == "wire":
        return wire_database(request)
    database = store.EmbeddedDatabase(tmp_path / "store", "t")
    request.addfinalizer(database.close)
    return database


def wire_database(request):
    """feedapp's Database on a fresh database of the wire server, closed after the test."""
    database = connect_mongo(Config(mongo_uri=request.getfixturevalue("wire_uri")))
    request.addfinalizer(database.client.close)
    return database


@pytest.fixture
def repo(mongo_db):
    repository = Repository(mongo_db)
    repository.ensure_indexes()
    return repository


_names = itertools.count()


@pytest.fixture
def new_user(repo):
    """new_user(username=None) -> the inserted user document."""

    def make(username=None, email=None):
        username = username or f"user{next(_names)}"
        email = email or f"{username.lower()}@example.com"
        return repo.create_user(username, email, "hash", username)

    return make


@pytest.fixture(params=["memory", pytest.param("wire", marks=pytest.mark.wire)])
def threadsafe_repo(request):
    """A Repository that threads may share: over the `memory://` store the app uses (mongomock
    with serialized writes) and over the wire server.

    Bare mongomock is not thread-safe (concurrent `$inc`s get lost, two deletes of one document
    raise KeyError), so threaded tests go through the app's own wrapper.
    """
    if request.param == "wire":
        database = wire_database(request)
    else:
        database = store.connect(Config(mongo_uri="memory://", mongo_db="t"))
    repository = Repository(database)
    repository.ensure_indexes()
    return repository


@pytest.fixture
def fast_thread_switching():
    """Switch threads every microsecond instead of every 5 ms, so races show up reliably."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(previous)
