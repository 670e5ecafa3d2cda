"""A TCP proxy in front of a real redis-server, to give one worker its own faults.

Each simulated worker reaches Redis only through its own proxy, so a fault here is seen by that
worker alone, on real sockets:
- `cut(seconds)`: every connection is closed and new ones are refused for a while (a network
  blip between one app server and Redis);
- `freeze_subscribers(seconds)`: what Redis sends to this worker's subscribed connections is
  held back for a while (a listener that is alive but slow); its other connections flow.

A connection counts as a subscriber once the client has sent SUBSCRIBE on it.
"""
import select
import socket
import threading
import time


class RedisProxy:
    def __init__(self, upstream_unix_path: str):
        self._upstream = upstream_unix_path
        self._server = socket.socket()
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(64)
        self.port = self._server.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._pipes = set()
        self._lock = threading.Lock()
        self._cut_until = 0.0
        self._frozen_until = 0.0
        self._closed = False
        threading.Thread(target=self._accept, name="redis-proxy", daemon=True).start()

    # --- faults ---------------------------------------------------------------------------

    def cut(self, seconds: float):
        """Close every connection now and refuse new ones for `seconds`."""
        self._cut_until = time.monotonic() + seconds
        with self._lock:
            pipes = list(self._pipes)
        for pipe in pipes:
            pipe.close()

    @property
    def is_cut(self) -> bool:
        return time.monotonic() < self._cut_until

    def freeze_subscribers(self, seconds: float):
        """Hold back what Redis sends to subscribed connections for `seconds`."""
        self._frozen_until = time.monotonic() + seconds

    def close(self):
        self._closed = True
        try:
            self._server.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
        except OSError:
            pass
        self._server.close()
        with self._lock:
            pipes = list(self._pipes)
        for pipe in pipes:
            pipe.close()

    # --- plumbing -------------------------------------------------------------------------

    def _accept(self):
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if self.is_cut:
                client.close()
                continue
            upstream = socket.socket(socket.AF_UNIX)
            try:
                upstream.connect(self._upstream)
            except OSError:
                client.close()
                continue
            pipe = _Pipe(self, client, upstream)
            with self._lock:
                self._pipes.add(pipe)
            threading.Thread(target=pipe.run, name="redis-proxy-pipe", daemon=True).start()

    def _forget(self, pipe):
        with self._lock:
            self._pipes.discard(pipe)

    def _frozen(self) -> bool:
        return time.monotonic() < self._frozen_until


class _Pipe:
    def __init__(self, proxy, client, upstream):
        self._proxy = proxy
        self._client = client
        self._upstream = upstream
        self._subscriber = False
        self._held = b""  # bytes from Redis held back while frozen
        self._closed = False

    def close(self):
        if self._closed:
            return
        self._closed = True
        for sock in (self._client, self._upstream):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def run(self):
        try:
            while not self._closed:
                readable, _, _ = select.select([self._client, self._upstream], [], [], 0.01)
                if self._client in readable and not self._from_client():
                    return
                if self._upstream in readable and not self._from_upstream():
                    return
                self._release_held()
        except (OSError, ValueError):
            pass
        finally:
            self.close()
            self._proxy._forget(self)

    def _from_client(self) -> bool:
        data = self._client.recv(65536)
        if not data:
            return False
        if b"SUBSCRIBE" in data.upper():
            self._subscriber = True
        self._upstream.sendall(data)
        return True

    def _from_upstream(self) -> bool:
        data = self._upstream.recv(65536)
        if not data:
            return False
        self._held += data
        return True

    def _release_held(self):
        if self._held and not (self._subscriber and self._proxy._frozen()):
            self._client.sendall(self._held)
            self._held = b""
