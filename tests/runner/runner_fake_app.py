"""A stand-in ASGI application for the `grid-mgmt up` and `serve` tests: /health and /docs answer "ok", /who the
process id and the client's address as the app sees them; `broken_app` fails at start."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


def create_app() -> App:
    """The factory uvicorn calls with --factory."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        status = 200 if scope["path"] in ("/health", "/docs", "/who") else 404
        body = b"ok" if status == 200 else b"not found"
        if scope["path"] == "/who":
            body = f"{os.getpid()} {(scope.get('client') or ('-',))[0]}".encode()
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": body})

    return app


def broken_app() -> App:
    """A factory that fails, as an app with a bad setting does."""
    raise RuntimeError("this app cannot start")
