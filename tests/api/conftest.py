"""Fixtures of the API tests (on top of tests/conftest.py)."""
import pytest


@pytest.fixture
def alice(make_user):
    return make_user("alice")


@pytest.fixture
def bob(make_user):
    return make_user("bob")


@pytest.fixture
def carol(make_user):
    return make_user("carol")


@pytest.fixture
def admin(make_user):
    return make_user("root", admin=True)


@pytest.fixture
def users_count(worker):
    return lambda: worker.repo.db.users.count_documents({})


@pytest.fixture
def posts_count(worker):
    return lambda: worker.repo.db.posts.count_documents({})
