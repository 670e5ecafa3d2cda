"""tests/api/test_users.py, on the wire server (conftest.py points the app at it)."""
from tests.api.conftest import *  # noqa: F401,F403 - the API tests' fixtures
from tests.api.test_users import *  # noqa: F401,F403 - the same tests, over the wire
