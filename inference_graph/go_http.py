"""What Go's net/http and net/url do at the edges of KServe's router: the content type a handler's
response gets, what url.Parse refuses in a service URL, and the error http.Client gives for a call
that got no answer."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

JSON_CT = "application/json"

_HOST_OK = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:\[\]%]*")


def url_error(url: str) -> str | None:
    """What Go's url.Parse refuses in a service URL (the host's characters), as its error says."""
    try:
        host = urlsplit(url).netloc.rpartition("@")[2]
    except ValueError as exc:
        return f'parse "{url}": {exc}'
    bad = next((ch for ch in host if not _HOST_OK.fullmatch(ch)), None)
    return f'parse "{url}": invalid character "{bad}" in host name' if bad else None


def go_call_error(url: str, exc: BaseException | None, timeout: bool = False) -> str:
    """The cause Go's http.Client gives for a call that got no answer (url.Error's format)."""
    if timeout or isinstance(exc, TimeoutError):
        return f'Post "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)'
    if isinstance(exc, ConnectionRefusedError) or "Connect call failed" in str(exc) or "refused" in str(exc).lower():
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return f'Post "{url}": dial tcp {parts.hostname}:{port}: connect: connection refused'
    return f'Post "{url}": {type(exc).__name__}: {exc}'


_HTML_SIGS = (b"<!DOCTYPE HTML", b"<HTML", b"<HEAD", b"<SCRIPT", b"<IFRAME", b"<H1", b"<DIV", b"<FONT", b"<TABLE",
              b"<A", b"<STYLE", b"<TITLE", b"<B", b"<BODY", b"<BR", b"<P", b"<!--")
_MAGIC = ((b"%PDF-", "application/pdf"), (b"\x89PNG\r\n\x1a\n", "image/png"), (b"GIF87a", "image/gif"),
          (b"GIF89a", "image/gif"), (b"\xff\xd8\xff", "image/jpeg"), (b"\x1f\x8b\x08", "application/x-gzip"),
          (b"PK\x03\x04", "application/zip"), (b"\xfe\xff", "text/plain; charset=utf-16be"),
          (b"\xff\xfe", "text/plain; charset=utf-16le"), (b"\xef\xbb\xbf", "text/plain; charset=utf-8"))
_BINARY = frozenset([*range(0x00, 0x09), 0x0B, *range(0x0E, 0x1B), *range(0x1C, 0x20)])


def sniff_content_type(body: bytes) -> str | None:
    """The common cases of Go's http.DetectContentType (what a Go handler's response gets when it
    sets no Content-Type); None for an empty body."""
    if not body:
        return None
    head = body[:512]
    text = head.lstrip(b"\t\n\x0c\r ")
    for sig in _HTML_SIGS:
        if text[:len(sig)].upper() == sig and text[len(sig):len(sig) + 1] in (b" ", b">"):
            return "text/html; charset=utf-8"
    if text.startswith(b"<?xml"):
        return "text/xml; charset=utf-8"
    for magic, ctype in _MAGIC:
        if head.startswith(magic):
            return ctype
    return "application/octet-stream" if any(b in _BINARY for b in head) else "text/plain; charset=utf-8"
