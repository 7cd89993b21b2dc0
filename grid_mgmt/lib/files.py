"""Serving stored, content-addressed files: inline, cached for good (the name is the content), typed as stored."""

from __future__ import annotations

from litestar.response import File


def stored_file(path: str, media_type: str, filename: str, sha256: str) -> File:
    """A file response for content that never changes under its name: ETag = its sha256, cached privately."""
    return File(
        path=path,
        media_type=media_type,
        content_disposition_type="inline",
        filename=filename,
        headers={
            "ETag": f'"{sha256}"',
            "Cache-Control": "private, max-age=31536000, immutable",
            "X-Content-Type-Options": "nosniff",
        },
    )
