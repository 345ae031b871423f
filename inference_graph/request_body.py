"""A request body read with a size limit, for the HTTP apps we write ourselves (the graph router,
the feedback service; KServe's model servers get components.envelope_model.BodyLimit instead).

Refused by its declared Content-Length before any of it is read, else while it streams in
(a chunked body declares no length), so an oversized body never sits in memory whole.
"""
from __future__ import annotations

from starlette.requests import Request


class BodyTooLarge(Exception):
    def __init__(self, limit: int):
        super().__init__(f"request body over {limit} bytes")
        self.limit = limit


async def read_body(request: Request, limit: int | None) -> bytes:
    """The whole body; ``limit`` None reads it whatever its size (KServe's router has no limit)."""
    if limit is None:
        return await request.body()
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge(limit)
    return bytes(body)
