"""Locust users that never send on a connection the server is about to close for being idle.

FastHttpUser's client (geventhttpclient) keeps idle connections as long as the server does and, as RFC 9110
asks, never retries a POST. A server closes an idle keep-alive connection after its own timeout (uvicorn,
which hosts LiteLLM's proxy and our TrueFoundry endpoint: 5 s; the fake engine when run with
``--keep-alive 5``, as it was by default). A request written on such
a connection as the server's timer fires gets no answer (``HTTPConnectionClosed``), and the run counts a
failure of the system under test that is only the race of two idle timers. It happens when the load
varies: a stall opens many connections, the ones not needed afterwards sit idle, and a later burst takes
them just as the server closes them (3 of 2,000 open-model requests on a busy CI machine; 61 with a 1 s
server keep-alive; tests/loadtests/test_keepalive.py). As the connectors' own engine clients do
(reference_impl/core/http1_transport.py, 4 s), a connection idle longer than ``max_idle_s`` is closed
instead of reused.
"""

from __future__ import annotations

import time
import weakref
from typing import Any

from geventhttpclient.client import HTTPClient, HTTPClientPool
from locust import FastHttpUser

from akto_wire import IDLE_KEEPALIVE_S


class IdleExpiringConnections:
    """One host's geventhttpclient connection pool, minus the connections idle past ``max_idle_s``.

    The pool hands out the most recently returned connection first, so the stale ones are the deepest:
    each is closed (its slot freed) when reached, never written to."""

    def __init__(self, pool: Any, max_idle_s: float) -> None:
        self._pool = pool
        self.max_idle_s = max_idle_s
        self._idle_since: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()

    def get_socket(self) -> Any:
        while True:
            sock = self._pool.get_socket()
            since = self._idle_since.pop(sock, None)
            if since is None or time.monotonic() - since <= self.max_idle_s:
                return sock
            self._pool.release_socket(sock)  # closes it and frees its slot

    def return_socket(self, sock: Any) -> None:
        self._idle_since[sock] = time.monotonic()
        self._pool.return_socket(sock)

    def release_socket(self, sock: Any) -> None:
        self._idle_since.pop(sock, None)
        self._pool.release_socket(sock)

    def __getattr__(self, name: str) -> Any:  # size, close, timeouts: as the wrapped pool has them
        return getattr(self._pool, name)


class IdleExpiringClientPool(HTTPClientPool):
    """geventhttpclient's per-host client pool whose clients' connections expire when idle."""

    def __init__(self, max_idle_s: float, **client_args: Any) -> None:
        super().__init__(**client_args)
        self.max_idle_s = max_idle_s

    def get_client(self, url: Any) -> HTTPClient:
        client = super().get_client(url)
        pool = client._connection_pool  # no public option for this; test_keepalive.py fails if it moves
        if not isinstance(pool, IdleExpiringConnections):
            client._connection_pool = IdleExpiringConnections(pool, self.max_idle_s)  # type: ignore[assignment]
        return client


class KeepAliveSafeUser(FastHttpUser):
    """A FastHttpUser whose idle connections are dropped after ``max_idle_s`` (below the server's keep-alive)."""

    abstract = True
    max_idle_s: float = IDLE_KEEPALIVE_S

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        agent = self.client.client
        if self.client_pool is None:  # a pool the user class shares on purpose is left as it is
            agent.clientpool = IdleExpiringClientPool(self.max_idle_s, **agent.clientpool.client_args)
