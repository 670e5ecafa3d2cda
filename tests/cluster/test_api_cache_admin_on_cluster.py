"""tests/api/test_cache_admin.py, run on the Redis Cluster (conftest.py points the app at it)."""
from tests.api.conftest import *  # noqa: F401,F403 - the API tests' fixtures
from tests.api.test_cache_admin import *  # noqa: F401,F403 - the same tests, on the cluster
