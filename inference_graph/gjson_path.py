"""GJSON path syntax as tidwall/gjson v1.18 splits it (the version KServe's go.mod pins): each
component is split *for the value at hand* - object keys take ``\\`` escapes and ``*``/``?``
wildcards; arrays take indexes, ``#``, ``#.key`` and ``#(query)``/``#(query)#`` - and ``check``, the
load-time refusal of what ``conditions`` does not evaluate.

What Go reads and ``conditions`` does not - pipes ``|``, modifiers other than ``@this``, ``{...}``
multipaths, ``!literals``, the ``..`` JSON Lines prefix, named ``[name:path]`` selectors, brackets
outside a query - is refused by ``check`` when the graph loads, never answered as "no match" at
request time (``UnsupportedCondition``).
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

# tidwall/gjson's built-in modifiers: ``@name`` is a modifier only when the name is one of these.
GO_MODIFIERS = frozenset({"pretty", "ugly", "reverse", "this", "flatten", "join", "valid", "keys", "values",
                          "tostr", "fromstr", "group", "dig"})


class UnsupportedCondition(ValueError):
    """A condition that uses GJSON syntax ``conditions`` does not evaluate."""


# -- load-time check ----------------------------------------------------------------------------
def check(path: str) -> None:
    """Raise ``UnsupportedCondition`` when ``path`` uses syntax ``conditions`` does not evaluate."""
    problem = _problem(path)
    if problem:
        raise UnsupportedCondition(f"condition {path!r}: {problem}")


def modifier_name(path: str) -> tuple[str, str]:
    i = 1
    while i < len(path) and path[i] not in ".|:":
        i += 1
    return path[1:i], path[i:]


def _problem(path: str) -> str | None:
    if path.startswith(".."):
        return "the JSON Lines prefix '..' is not supported"
    rest = path
    if len(path) > 1:
        if path[0] == "!":
            return "static literals (!true, !\"text\") are not supported"
        if path[0] == "@":
            name, after = modifier_name(path)
            if name in GO_MODIFIERS:
                if name != "this":
                    return f"the modifier @{name} is not supported (only @this)"
                if after.startswith(":"):
                    return "modifier arguments are not supported"
                if after.startswith("|"):
                    return "pipes '|' are not supported; use '.'"
                return _problem(after[1:]) if after else None
        if path[0] == "{":
            return "{...} multipaths are not supported"
        if path[0] == "[":
            subs, after, ok = sub_selectors(path)
            if not ok:
                return "an unbalanced '[' selector"
            for label, sub in subs:
                if label is not None:
                    return "named selectors [name:path] are not supported"
                problem = _problem(sub)
                if problem:
                    return problem
            if after and after[0] != ".":
                return ("pipes '|' are not supported; use '.'" if after[0] == "|"
                        else f"unexpected {after[0]!r} after a ']' selector")
            return _problem(after[1:]) if after else None
    i, n = 0, len(rest)
    while i < n:
        ch = rest[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "|":
            return "pipes '|' are not supported; use '.'"
        if ch == "." and i + 1 < n and _is_dot_piper(rest[i + 1:]):
            return "'.@modifier', '.[' and '.{' (pipes) are not supported"
        if ch == "#" and i + 1 < n and rest[i + 1] in "([" and (i == 0 or rest[i - 1] == "."):
            q = _query(rest[i:])
            if q is None:
                return "an unbalanced query #(...)"
            qpath, _op, _value, end, _vesc = q
            problem = _problem(qpath) if qpath else None
            if problem:
                return problem
            i += end
            if i < n and rest[i] == "#":
                i += 1
            if i < n and rest[i] != ".":
                return f"unexpected {rest[i]!r} after a query's closing bracket"
            continue
        if ch in "()[]{}":
            return f"{ch!r} outside a query (escape it, \\{ch}, when it is part of a key)"
        i += 1
    return None


# -- Go's path splitting ------------------------------------------------------------------------
def _is_dot_piper(s: str) -> bool:
    """After a '.', does a modifier, '[' or '{' start a piped path (gjson's isDotPiperChar)?"""
    if s[0] == "@":
        return modifier_name(s)[0] in GO_MODIFIERS
    return s[0] in "[{"


def _trim(s: str) -> str:
    lo, hi = 0, len(s)
    while lo < hi and s[lo] <= " ":
        lo += 1
    while hi > lo and s[hi - 1] <= " ":
        hi -= 1
    return s[lo:hi]


@dataclass
class ObjectPath:
    part: str
    rest: str = ""
    more: bool = False
    piped: bool = False
    wild: bool = False


def object_path(path: str) -> ObjectPath:
    n, i, wild = len(path), 0, False

    def split(part: str, i: int) -> ObjectPath:  # at a '.' or '|'
        if path[i] == "|" or (i < n - 1 and _is_dot_piper(path[i + 1:])):
            return ObjectPath(part, path[i + 1:], piped=True, wild=wild)
        return ObjectPath(part, path[i + 1:], more=True, wild=wild)

    while i < n:
        ch = path[i]
        if ch in ".|":
            return split(path[:i], i)
        if ch in "*?":
            wild = True
        elif ch == "\\":
            # An escaped character is part of the key (the backslash is dropped).
            part = list(path[:i])
            i += 1
            if i < n:
                part.append(path[i])
                i += 1
                while i < n:
                    ch = path[i]
                    if ch == "\\":
                        i += 1
                        if i < n:
                            part.append(path[i])
                        i += 1
                        continue
                    if ch in ".|":
                        return split("".join(part), i)
                    if ch in "*?":
                        wild = True
                    part.append(ch)
                    i += 1
            return ObjectPath("".join(part), wild=wild)
        i += 1
    return ObjectPath(path, wild=wild)


@dataclass
class ArrayPath:
    part: str = ""
    rest: str = ""
    more: bool = False
    piped: bool = False
    arrch: bool = False
    alog: bool = False
    alogkey: str = ""
    query_on: bool = False
    query_all: bool = False
    qpath: str = ""
    op: str = ""
    value: str = ""


def array_path(path: str) -> ArrayPath:
    r = ArrayPath()
    n, i = len(path), 0
    while i < n:
        ch = path[i]
        if ch == "|":
            r.part, r.rest, r.piped = path[:i], path[i + 1:], True
            return r
        if ch == ".":
            r.part = path[:i]
            if not r.arrch and i < n - 1 and _is_dot_piper(path[i + 1:]):
                r.rest, r.piped = path[i + 1:], True
            else:
                r.rest, r.more = path[i + 1:], True
            return r
        if ch == "#":
            r.arrch = True
            if i == 0 and n > 1:
                if path[1] == ".":
                    r.alog, r.alogkey = True, path[2:]
                elif path[1] in "[(":
                    r.query_on = True
                    q = _query(path)
                    if q is None:
                        raise UnsupportedCondition(f"unbalanced query in {path!r}")
                    qpath, op, value, end, vesc = q
                    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
                        value = value[1:-1]
                        if vesc:
                            value = _unescape(value)
                    r.qpath, r.op, r.value = qpath, op, value
                    i = end - 1
                    if i + 1 < n and path[i + 1] == "#":
                        r.query_all = True
        i += 1
    r.part, r.rest = path, ""
    return r


def _group(s: str, start: int, opens: str, closes: str) -> Iterator[tuple[int, str, int]]:
    """Walk a bracketed group as gjson's parseQuery and parseSubSelectors do, from ``start`` (just
    inside the opening bracket): yield (index, token, depth) for each character outside a ``\\``
    escape (the escape and its character are skipped) and for each quoted string as one token (its
    text from the opening quote to the closing one). ``opens``/``closes`` nest; the scan ends after
    the bracket that closes the group, yielded with depth 0, or at the end of ``s``."""
    depth, i, n = 1, start, len(s)
    while i < n:
        ch = s[i]
        if ch == '"':
            end = i + 1
            while end < n and s[end] != '"':
                end += 2 if s[end] == "\\" else 1
            yield i, s[i:end + 1], depth
            i = end + 1
        elif ch == "\\":
            i += 2
        else:
            depth += (ch in opens) - (ch in closes)
            yield i, ch, depth
            if depth == 0:
                return
            i += 1


def _query(query: str) -> tuple[str, str, str, int, bool] | None:
    """Split ``#(path op value)...`` (gjson's parseQuery): (path, op, value, index after the
    closing bracket, whether a quoted part had escapes); None when the brackets do not balance."""
    if len(query) < 2 or query[0] != "#" or query[1] not in "([":
        return None
    j, vesc = 0, False
    for i, token, depth in _group(query, 2, "[(", "])"):
        if depth == 0:
            break
        if token[0] == '"':
            vesc = vesc or "\\" in token
        elif depth == 1 and j == 0 and token in "!=<>%":
            j = i
    else:
        return None
    if not j:
        return _trim(query[2:i]), "", "", i + 1, vesc
    path, value = _trim(query[2:j]), _trim(query[j:i])
    if len(value) == 1:
        size = 1
    elif value[:2] in ("!=", "!%", "<=", ">="):
        size = 2
    elif value[:2] == "==":
        value, size = value[1:], 1
    elif value[0] in "<>=%":
        size = 1
    else:
        size = 0  # e.g. "!x": no operator, Go checks existence only
    return path, value[:size], _trim(value[size:]), i + 1, vesc


_ESCAPES = {"\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", '"': '"'}
_HEX4 = re.compile(r"[0-9A-Fa-f]{4}")


def _hex4(s: str) -> int:
    return int(s[:4], 16) if _HEX4.match(s) else 0  # Go's runeit ignores a parse error: 0


def _unescape(s: str) -> str:
    """Go's ``unescape``: stops at a control character or a bad escape; lone surrogates -> U+FFFD."""
    out: list[str] = []
    i, n = 0, len(s)
    while i < n:
        ch = s[i]
        if ch < " ":
            break
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        i += 1
        if i >= n:
            break
        esc = s[i]
        if esc in _ESCAPES:
            out.append(_ESCAPES[esc])
            i += 1
            continue
        if esc != "u" or i + 5 > n:
            break
        r = _hex4(s[i + 1:])
        i += 5
        if 0xD800 <= r <= 0xDFFF:
            low = _hex4(s[i + 2:]) if n - i >= 6 and s[i] == "\\" and s[i + 1] == "u" else None
            if low is not None:
                i += 6
                r = 0x10000 + ((r - 0xD800) << 10) + (low - 0xDC00) if r < 0xDC00 <= low <= 0xDFFF else 0xFFFD
            else:
                r = 0xFFFD
        out.append(chr(r))
    return "".join(out)


def sub_selectors(path: str) -> tuple[list[tuple[str | None, str]], str, bool]:
    """Split a leading ``[a,b,...]`` (gjson's parseSubSelectors): ([(name, path)], rest, ok)."""
    subs: list[tuple[str | None, str]] = []
    modifier = colon = 0
    start = 1
    for i, token, depth in _group(path, 1, "[({", "])}"):
        if token == "@":
            if not modifier and path[i - 1] in ".|":
                modifier = i
        elif token == ":":
            if not modifier and not colon and depth == 1:
                colon = i
        elif (token == "," and depth == 1) or depth == 0:  # a selector ends at a top-level "," or the "]"
            subs.append((None, path[start:i]) if not colon else (path[start:colon], path[colon + 1:i]))
            colon = modifier = 0
            start = i + 1
            if depth == 0:
                return subs, path[i + 1:], True
    return subs, "", False
