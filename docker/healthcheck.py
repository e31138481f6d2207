"""Container healthcheck: ``akto-healthcheck URL`` (an HTTP GET answering 200) or ``akto-healthcheck tcp:PORT``.

Why a script: the slim images have no curl, and one small probe (http.client, no urllib/ssl start-up cost)
keeps the per-check CPU low when six containers check every two seconds on a 2-core machine.
Exit 0 healthy, 1 not (the reason on stderr, which ``docker inspect`` shows).
"""

import http.client
import socket
import sys
from urllib.parse import urlsplit

TIMEOUT_S = 2.0


def check(target: str) -> str | None:
    """None when healthy, else why not."""
    if target.startswith("tcp:"):
        with socket.create_connection(("127.0.0.1", int(target[4:])), timeout=TIMEOUT_S):
            return None
    url = urlsplit(target)
    connection = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=TIMEOUT_S)
    try:
        connection.request("GET", url.path or "/")
        status = connection.getresponse().status
    finally:
        connection.close()
    return None if status == 200 else f"{target} answered {status}"


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: akto-healthcheck http://127.0.0.1:PORT/PATH | tcp:PORT")
    try:
        problem = check(sys.argv[1])
    except (OSError, ValueError) as exc:
        problem = f"{sys.argv[1]}: {exc}"
    if problem:
        sys.exit(problem)
