import pytest

from .deployment import Deployment


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    with Deployment(tmp_path_factory.mktemp("deploy") / "var", workers=3) as running:
        yield running
