"""tests/api/test_conditional.py, on the wire server (conftest.py points the app at it)."""
from tests.api.conftest import *  # noqa: F401,F403 - the API tests' fixtures
from tests.api.test_conditional import *  # noqa: F401,F403 - the same tests, over the wire
