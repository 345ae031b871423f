"""Header propagation as KServe's router does it (``PROPAGATE_HEADERS``, from the controller's
``router.headers.propagate``): request headers whose canonical name matches a pattern go on to
every step."""
from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence

from inference_graph.go_http import JSON_CT

log = logging.getLogger(__name__)

PROPAGATE_ENV = "PROPAGATE_HEADERS"  # what KServe's controller sets from router.headers.propagate
# Never forwarded even when a propagation pattern matches: the client sets its own.
_HOP_HEADERS = frozenset({"host", "content-length", "connection", "keep-alive", "transfer-encoding",
                          "te", "trailer", "upgrade", "expect", "proxy-connection"})
_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def canonical_header(name: str) -> str:
    """textproto.CanonicalMIMEHeaderKey: ``x-request-id`` -> ``X-Request-Id`` (names with a
    character outside the token set are left as they are)."""
    if not name or any(ch not in _TOKEN_CHARS for ch in name):
        return name
    out, upper = [], True
    for ch in name:
        out.append(ch.upper() if upper else ch.lower())
        upper = ch == "-"
    return "".join(out)


# Python re features RE2 (Go's regexp) refuses: Go skips such a pattern, so must we.
_NOT_RE2 = re.compile(r"\(\?(?:[=!]|<[=!]|P=)|\\[1-9]")


def compile_header_patterns(patterns: Iterable[str]) -> list[re.Pattern[str]]:
    """KServe's compilePatterns: each pattern that compiles, in order; one that does not is
    logged and skipped (the router still starts)."""
    compiled = []
    for p in patterns:
        try:
            if _NOT_RE2.search(p):
                raise re.error("uses syntax Go's regexp does not have (lookaround or a backreference)")
            compiled.append(re.compile(p))
        except re.error as exc:
            log.error("failed to compile header pattern %r, skipped: %s", p, exc)
    return compiled


def patterns_from_env(environ: Mapping[str, str] = os.environ) -> list[str]:
    """``PROPAGATE_HEADERS``, comma-separated, as KServe's router reads it (unset: none)."""
    value = environ.get(PROPAGATE_ENV)
    return [] if value is None else value.split(",")


def outgoing_headers(patterns: Sequence[re.Pattern[str]],
                     headers: Mapping[str, str] | Iterable[tuple[str, str]] | None) -> list[tuple[str, str]]:
    """The headers every step's call carries: the request's that ``patterns`` propagate, and a JSON
    Content-Type unless a propagated one says otherwise."""
    items = headers.items() if isinstance(headers, Mapping) else (headers or ())
    out = []
    if patterns:
        # Go's http.Header holds canonical names; its patterns are matched against those.
        for k, v in items:
            name = canonical_header(k)
            if name.lower() not in _HOP_HEADERS and any(p.search(name) for p in patterns):
                out.append((name, v))
    if not any(k.lower() == "content-type" and v for k, v in out):
        out.append(("Content-Type", JSON_CT))
    return out
