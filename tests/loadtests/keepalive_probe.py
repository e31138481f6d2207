"""Run by test_keepalive.py in its own process (Locust monkey-patches the standard library with gevent).

A keep-alive HTTP/1.1 server that never closes idle connections answers each request with the client's
port, so the client's connection reuse is visible. Prints, as JSON, the ports three requests came from for
our user and for Locust's plain FastHttpUser: two back to back, then one after an idle pause longer than
``max_idle_s``; then the ports of two concurrent requests after another pause (the pool's two slots).
"""

from locust import FastHttpUser, events, task  # noqa: F401  (first: Locust patches the standard library)

import json

import gevent
from gevent.pywsgi import WSGIServer
from locust.env import Environment

from loadtests.keepalive import KeepAliveSafeUser

MAX_IDLE_S = 0.2
PAUSE_S = 0.5  # the idle time under test (longer than MAX_IDLE_S), not a wait for anything


def client_port(environ, start_response):  # noqa: ANN001, ANN201
    body = str(environ["REMOTE_PORT"]).encode()
    start_response("200 OK", [("Content-Length", str(len(body))), ("Content-Type", "text/plain")])
    return [body]


def ports_seen(user_class: type[FastHttpUser]) -> dict[str, list[str]]:
    user = user_class(Environment(user_classes=[user_class]))

    def get() -> str:
        return user.client.get("/", name="probe").text

    sequential = [get(), get()]
    gevent.sleep(PAUSE_S)
    sequential.append(get())
    gevent.sleep(PAUSE_S)
    both = [gevent.spawn(get), gevent.spawn(get)]
    gevent.joinall(both, timeout=5, raise_error=True)
    return {"sequential": sequential, "concurrent": [g.value for g in both]}


def main() -> None:
    server = WSGIServer(("127.0.0.1", 0), client_port, log=None)
    server.start()
    host = f"http://127.0.0.1:{server.server_port}"

    class Ours(KeepAliveSafeUser):
        max_idle_s, concurrency = MAX_IDLE_S, 2

        @task
        def noop(self) -> None: ...

    class Plain(FastHttpUser):
        concurrency = 2

        @task
        def noop(self) -> None: ...

    Ours.host = Plain.host = host
    print(json.dumps({"ours": ports_seen(Ours), "plain": ports_seen(Plain)}))
    server.stop(timeout=1)


if __name__ == "__main__":
    main()
