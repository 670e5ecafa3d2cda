"""Fixtures of the unit tests: a fresh database and a Repository over it.

`mongo_db` is mongomock and, a second time, the embedded store (feedapp.docstore): every
repository test runs on both, so the embedded store answers as the reference does.
"""
import itertools
import sys

import mongomock
import pytest

from feedapp import store
from feedapp.config import Config
from feedapp.repository import Repository


@pytest.fixture(params=["mongomock", "embedded"])
def mongo_db(request, tmp_path):
    if request.param == "mongomock":
        return mongomock.MongoClient()["t"]
    database = store.EmbeddedDatabase(tmp_path / "store", "t")
    request.addfinalizer(database.close)
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


@pytest.fixture
def threadsafe_repo():
    """A Repository over the `memory://` store the app uses: mongomock with serialized writes.

    Bare mongomock is not thread-safe (concurrent `$inc`s get lost, two deletes of one document
    raise KeyError), so threaded tests go through the app's own wrapper.
    """
    repository = Repository(store.connect(Config(mongo_uri="memory://", mongo_db="t")))
    repository.ensure_indexes()
    return repository


@pytest.fixture
def fast_thread_switching():
    """Switch threads every microsecond instead of every 5 ms, so races show up reliably."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(previous)
