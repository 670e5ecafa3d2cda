"""A start-up whose MONGO_URI cannot be reached says so in one line and exits non-zero:
which URI (without its password), what failed, and the timeout. Nothing is left running."""
import os
import socket
import subprocess
import sys

import pytest

from tests.e2e.deployment import ROOT, free_port

TIMEOUT_MS = 500


@pytest.fixture
def closed_port():
    return free_port()  # nothing listens there once the probe socket is closed


@pytest.fixture
def silent_port():
    """A port that accepts connections (the kernel's backlog) and never answers a byte."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


def run(args, tmp_path, uri):
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "AUTH_REDIS_URL")}
    env.update(MONGO_URI=uri, MONGO_TIMEOUT_MS=str(TIMEOUT_MS), DATA_DIR=str(tmp_path / "var"),
               PORT=str(free_port()), WORKERS="1", JWT_SECRET="s" * 40)
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def the_line(run, port):
    """The one line that names the store, checked for what it must and must not say."""
    output = run.stdout + run.stderr
    assert run.returncode != 0, output
    assert "Traceback" not in output and "s3cret" not in output, output
    lines = [line for line in output.splitlines() if "MongoDB" in line]
    assert len(lines) == 1, output
    assert f"mongodb://feeder:***@127.0.0.1:{port}/feedapp" in lines[0]
    assert f"{TIMEOUT_MS} ms" in lines[0] and "MONGO_TIMEOUT_MS" in lines[0]
    return lines[0]


def test_gunicorn_against_a_closed_port_exits_with_one_clear_line(tmp_path, closed_port):
    started = run(["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"], tmp_path,
                  f"mongodb://feeder:s3cret@127.0.0.1:{closed_port}/feedapp")
    assert "Connection refused" in the_line(started, closed_port)
    assert not (tmp_path / "var" / "redis").exists()  # refused before any redis-server started


def test_gunicorn_against_a_silent_server_exits_with_one_clear_line(tmp_path, silent_port):
    started = run(["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"], tmp_path,
                  f"mongodb://feeder:s3cret@127.0.0.1:{silent_port}/feedapp")
    line = the_line(started, silent_port)
    # pymongo's monitor gives up at the same moment as server selection: either may speak first
    assert f"127.0.0.1:{silent_port}: timed out" in line or "no server answered" in line, line


def test_cli_against_a_closed_port_exits_with_one_clear_line(tmp_path, closed_port):
    promoted = run(["flask", "--app", "feedapp", "users", "promote", "someone"], tmp_path,
                   f"mongodb://feeder:s3cret@127.0.0.1:{closed_port}/feedapp")
    assert "Connection refused" in the_line(promoted, closed_port)
