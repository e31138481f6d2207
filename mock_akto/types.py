"""The ASGI shapes every engine module speaks, defined once (as ``starlette/types.py`` does)."""

from typing import Any, Awaitable, Callable, MutableMapping

#: One ASGI event (``http.request``, ``http.response.start``...) or a connection's scope: plain dicts.
Message = MutableMapping[str, Any]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
