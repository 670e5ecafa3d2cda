"""The API tests (tests/api), run again with the app on a fresh database of the wire server.

Every test collected in this package is marked `wire` (`make test PYTEST_ARGS='-m wire'`).
"""
from dataclasses import replace
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items):
    for item in items:
        if HERE in Path(item.path).parents:
            item.add_marker(pytest.mark.wire)


@pytest.fixture
def config(config, wire_uri):
    return replace(config, mongo_uri=wire_uri)
