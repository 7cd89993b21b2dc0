"""A bare Litestar app for the "for scale" figure: one GET and one POST handler that do nothing."""

# Serve with `uvicorn bench.noop_app:app`.

from __future__ import annotations

from litestar import Litestar, MediaType, get, post


@get("/noop", media_type=MediaType.TEXT)
async def noop_get() -> str:
    return ""


@post("/noop", status_code=204)
async def noop_post() -> None:
    return None


app = Litestar(route_handlers=[noop_get, noop_post], openapi_config=None)


def create_app() -> Litestar:
    """The factory `grid-mgmt serve`'s processes call (the same app)."""
    return app
