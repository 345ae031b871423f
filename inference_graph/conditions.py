"""GJSON conditions evaluated as KServe's router evaluates them: ``gjson.GetBytes(body, path).Exists()``
of tidwall/gjson v1.18 (the version KServe's go.mod pins), written anew for parsed JSON.

Why not the ``gjson`` package (gjson-py): it raises both where Go finds nothing and on much of Go's
syntax - an unquoted query value such as ``#(decision_picker==ERROR)``, which Go compares as the
string ``ERROR``, raises there - so an exception cannot tell "no match" from "not understood", and
every KServe e2e graph would take the wrong branch. Here a path is walked the way Go walks it: each
component is split as Go splits it *for the value at hand* (object keys take ``\\`` escapes and
``*``/``?`` wildcards; arrays take indexes, ``#``, ``#.key`` and ``#(query)``/``#(query)#``), and a
query compares as Go compares (a bare value is a string; against a number it is parsed as Go's
``strconv.ParseFloat`` would, 0 when it is not a number).

What Go reads and this module does not - pipes ``|``, modifiers other than ``@this``, ``{...}``
multipaths, ``!literals``, the ``..`` JSON Lines prefix, named ``[name:path]`` selectors, brackets
outside a query - is refused by ``check`` when the graph loads, never answered as "no match" at
request time (``UnsupportedCondition``). Two corner cases are not followed: Go's 10,000-steps-per-
character limit on ``%`` patterns, and a path on a *string* document (Go scans the string's text
for a ``{``); neither occurs in a condition written for JSON bodies.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

# tidwall/gjson's built-in modifiers: ``@name`` is a modifier only when the name is one of these.
GO_MODIFIERS = frozenset({"pretty", "ugly", "reverse", "this", "flatten", "join", "valid", "keys", "values",
                          "tostr", "fromstr", "group", "dig"})


class UnsupportedCondition(ValueError):
    """A condition that uses GJSON syntax this module does not evaluate."""


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class Obj:
    """A JSON object as its (key, value) pairs, in document order, duplicates kept: Go walks the
    text, so with duplicate keys it tries each in turn."""

    __slots__ = ("pairs",)

    def __init__(self, pairs):
        self.pairs = list(pairs)

    def __repr__(self) -> str:
        return f"Obj({self.pairs!r})"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse(body: bytes | None) -> tuple[bool, Any]:
    """(``gjson.ValidBytes(body)``, the document): objects as ``Obj``, numbers as float (Go's
    ``Result.Num``), strings, True/False/None, lists."""
    if not body:
        return False, None
    try:
        # surrogateescape: Go's validator does not check UTF-8, so invalid bytes must not invalidate.
        text = body.decode("utf-8", "surrogateescape")
        return True, json.loads(text, object_pairs_hook=Obj, parse_int=float, parse_float=float,
                                parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return False, None


def from_python(value: Any) -> Any:
    """A plain Python JSON value (dicts, ints) in this module's form."""
    if isinstance(value, dict):
        return Obj((k, from_python(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [from_python(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def exists(doc: Any, path: str) -> bool:
    """``gjson.Get(doc, path).Exists()``; raises ``UnsupportedCondition`` for syntax outside
    this module (``check`` finds that at load time)."""
    return get(doc, path) is not MISSING


# -- load-time check ----------------------------------------------------------------------------
def check(path: str) -> None:
    """Raise ``UnsupportedCondition`` when ``path`` uses syntax that is not evaluated here."""
    problem = _problem(path)
    if problem:
        raise UnsupportedCondition(f"condition {path!r}: {problem}")


def _modifier_name(path: str) -> tuple[str, str]:
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
            name, after = _modifier_name(path)
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
            subs, after, ok = _sub_selectors(path)
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
        return _modifier_name(s)[0] in GO_MODIFIERS
    return s[0] in "[{"


def _trim(s: str) -> str:
    lo, hi = 0, len(s)
    while lo < hi and s[lo] <= " ":
        lo += 1
    while hi > lo and s[hi - 1] <= " ":
        hi -= 1
    return s[lo:hi]


@dataclass
class _ObjectPath:
    part: str
    rest: str = ""
    more: bool = False
    piped: bool = False
    wild: bool = False


def _object_path(path: str) -> _ObjectPath:
    n, i, wild = len(path), 0, False

    def split(part: str, i: int) -> _ObjectPath:  # at a '.' or '|'
        if path[i] == "|" or (i < n - 1 and _is_dot_piper(path[i + 1:])):
            return _ObjectPath(part, path[i + 1:], piped=True, wild=wild)
        return _ObjectPath(part, path[i + 1:], more=True, wild=wild)

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
            return _ObjectPath("".join(part), wild=wild)
        i += 1
    return _ObjectPath(path, wild=wild)


@dataclass
class _ArrayPath:
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


def _array_path(path: str) -> _ArrayPath:
    r = _ArrayPath()
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


def _query(query: str) -> tuple[str, str, str, int, bool] | None:
    """Split ``#(path op value)...`` (gjson's parseQuery): (path, op, value, index after the
    closing bracket, whether a quoted part had escapes); None when the brackets do not balance."""
    if len(query) < 2 or query[0] != "#" or query[1] not in "([":
        return None
    i, j, depth, vesc, n = 2, 0, 1, False, len(query)
    while i < n:
        ch = query[i]
        if depth == 1 and j == 0 and ch in "!=<>%":
            j = i
            i += 1
            continue
        if ch == "\\":
            i += 1
        elif ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
            if depth == 0:
                break
        elif ch == '"':
            i += 1
            while i < n:
                if query[i] == "\\":
                    vesc = True
                    i += 1
                elif query[i] == '"':
                    break
                i += 1
        i += 1
    if depth > 0:
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


def _sub_selectors(path: str) -> tuple[list[tuple[str | None, str]], str, bool]:
    """Split a leading ``[a,b,...]`` (gjson's parseSubSelectors): ([(name, path)], rest, ok)."""
    subs: list[tuple[str | None, str]] = []
    modifier = colon = 0
    depth, start, i = 1, 1, 1

    def push() -> None:
        nonlocal colon, modifier, start
        subs.append((None, path[start:i]) if not colon else (path[start:colon], path[colon + 1:i]))
        colon = modifier = 0
        start = i + 1

    while i < len(path):
        ch = path[i]
        if ch == "\\":
            i += 1
        elif ch == "@":
            if not modifier and path[i - 1] in ".|":
                modifier = i
        elif ch == ":":
            if not modifier and not colon and depth == 1:
                colon = i
        elif ch == ",":
            if depth == 1:
                push()
        elif ch == '"':
            i += 1
            while i < len(path):
                if path[i] == "\\":
                    i += 1
                elif path[i] == '"':
                    break
                i += 1
        elif ch in "[({":
            depth += 1
        elif ch in "])}":
            depth -= 1
            if depth == 0:
                push()
                return subs, path[i + 1:], True
        i += 1
    return subs, "", False


# -- Go's walk ----------------------------------------------------------------------------------
class _Ctx:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: Any = MISSING


def get(doc: Any, path: str) -> Any:
    """``gjson.Get``: the value at ``path`` (a count is a float, ``#.key`` and ``#(...)#`` give
    lists) or ``MISSING``."""
    if len(path) > 1:
        if path[0] == "!":
            raise UnsupportedCondition(f"static literal in {path!r}")
        if path[0] == "@":
            name, after = _modifier_name(path)
            if name in GO_MODIFIERS:
                if name != "this" or after.startswith(":"):
                    raise UnsupportedCondition(f"modifier in {path!r}")
                return get(doc, after[1:]) if after else doc
        if path[0] == "{":
            raise UnsupportedCondition(f"multipath in {path!r}")
        if path[0] == "[":
            subs, after, ok = _sub_selectors(path)
            if not ok or any(name is not None for name, _ in subs) or (after and after[0] != "."):
                raise UnsupportedCondition(f"selector in {path!r}")
            found = [v for v in (get(doc, sub) for _, sub in subs) if v is not MISSING]
            return get(found, after[1:]) if after else found
    if path.startswith(".."):
        raise UnsupportedCondition(f"JSON Lines path {path!r}")
    c = _Ctx()
    if isinstance(doc, Obj):
        _walk_object(c, doc, path)
    elif isinstance(doc, list):
        _walk_array(c, doc, path)
    return c.value


def _walk_object(c: _Ctx, obj: Obj, path: str) -> bool:
    rp = _object_path(path)
    if rp.piped:
        raise UnsupportedCondition(f"pipe in {path!r}")
    for key, value in obj.pairs:
        if not (match(key, rp.part) if rp.wild else key == rp.part):
            continue
        if not rp.more:
            c.value = value
            return True
        # A key whose value lacks the rest of the path: Go goes on to the next key of that name.
        if isinstance(value, Obj) and _walk_object(c, value, rp.rest):
            return True
        if isinstance(value, list) and _walk_array(c, value, rp.rest):
            return True
    return False


def _parse_uint(s: str) -> int | None:
    if not s or not all("0" <= ch <= "9" for ch in s):
        return None
    return int(s) % (1 << 64)  # Go's uint64 wraps


def _walk_array(c: _Ctx, arr: list, path: str) -> bool:
    rp = _array_path(path)
    if rp.piped:
        raise UnsupportedCondition(f"pipe in {path!r}")
    if rp.query_on:
        if rp.more and "|" in rp.rest:
            raise UnsupportedCondition(f"pipe in {path!r}")
        found = []
        for elem in arr:
            if isinstance(elem, (Obj, list)):
                res = get(elem, rp.qpath)
            elif rp.qpath:
                continue
            else:
                res = elem
            if not _query_matches(rp, res):
                continue
            res = get(elem, rp.rest) if rp.more else elem
            if not rp.query_all:
                c.value = res  # the first match decides, even when it lacks the rest of the path
                return True
            if res is not MISSING:
                found.append(res)
        if rp.query_all and c.value is MISSING:
            c.value = found  # "#(...)#" exists even when nothing matched: []
        return False
    if rp.alog:
        if "|" in rp.alogkey:
            raise UnsupportedCondition(f"pipe in {path!r}")
        c.value = [v for v in (get(elem, rp.alogkey) for elem in arr) if v is not MISSING]
        return True
    if rp.arrch:
        if rp.part == "#":
            c.value = float(len(arr))
            return True
        return False
    index = _parse_uint(rp.part)
    if index is None or index >= len(arr):
        return False
    elem = arr[index]
    if not rp.more:
        c.value = elem
        return True
    if isinstance(elem, Obj):
        return _walk_object(c, elem, rp.rest)
    if isinstance(elem, list):
        return _walk_array(c, elem, rp.rest)
    return False


# -- queries ------------------------------------------------------------------------------------
_BOOLS = {"1": True, "t": True, "true": True, "0": False, "f": False, "false": False}  # ParseBool, lowered


def _trueish(v: Any) -> bool:
    if v is True:
        return True
    if isinstance(v, str):
        return _BOOLS.get(v.lower(), False)
    return isinstance(v, float) and v != 0


def _falseish(v: Any) -> bool:
    # Go's zero Result (nothing there) has the Null type: falseish, and nullish too.
    if v is None or v is MISSING or v is False:
        return True
    if isinstance(v, str):
        return _BOOLS.get(v.lower(), True) is False
    return isinstance(v, float) and v == 0


_DEC_FLOAT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_HEX_FLOAT = re.compile(r"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?\d+")
_SPECIAL_FLOAT = re.compile(r"[+-]?(?:inf|infinity)|nan", re.IGNORECASE)


def go_parse_float(s: str) -> float:
    """``strconv.ParseFloat(s, 64)`` with its error ignored, as gjson does: 0 for a non-number."""
    if _DEC_FLOAT.fullmatch(s) or _SPECIAL_FLOAT.fullmatch(s):
        return float(s)
    if _HEX_FLOAT.fullmatch(s):
        try:
            return float.fromhex(s)
        except OverflowError:
            return -math.inf if s.startswith("-") else math.inf
    return 0.0


def _query_matches(rp: _ArrayPath, value: Any) -> bool:
    rpv = rp.value
    if rpv.startswith("~"):
        kind = rpv[1:]
        checks = {"*": lambda v: v is not MISSING, "null": lambda v: v is None or v is MISSING,
                  "true": _trueish, "false": _falseish}
        if kind in checks:
            rpv, value = "true", bool(checks[kind](value))
        else:
            rpv, value = "", MISSING
    if value is MISSING:
        return False
    op = rp.op
    if not op:
        return True
    if isinstance(value, str):
        return {"=": lambda: value == rpv, "!=": lambda: value != rpv, "<": lambda: value < rpv,
                "<=": lambda: value <= rpv, ">": lambda: value > rpv, ">=": lambda: value >= rpv,
                "%": lambda: match(value, rpv), "!%": lambda: not match(value, rpv)}.get(op, lambda: False)()
    if value is True:
        return {"=": rpv == "true", "!=": rpv != "true", ">": rpv == "false", ">=": True}.get(op, False)
    if value is False:
        return {"=": rpv == "false", "!=": rpv != "false", "<": rpv == "true", "<=": True}.get(op, False)
    if isinstance(value, float):
        n = go_parse_float(rpv)
        return {"=": value == n, "!=": value != n, "<": value < n, "<=": value <= n, ">": value > n,
                ">=": value >= n}.get(op, False)
    return False  # null, objects and arrays compare false with any operator


def match(s: str, pattern: str) -> bool:
    """tidwall/match: ``*`` any run of characters, ``?`` one character, ``\\`` escapes the next
    (a trailing ``\\`` matches nothing)."""
    tokens: list[str | None] = []  # "*", "?", a literal character, or None (never matches)
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 1
            tokens.append(("=" + pattern[i]) if i < len(pattern) else None)
        elif ch in "*?":
            tokens.append(ch)
        else:
            tokens.append("=" + ch)
        i += 1
    # Greedy with backtracking to the last '*': finds a match whenever one exists.
    si = ti = 0
    star_ti, star_si = -1, 0
    while si < len(s):
        tok = tokens[ti] if ti < len(tokens) else None
        if tok == "*":
            star_ti, star_si = ti, si
            ti += 1
            continue
        if tok is not None and (tok == "?" or tok[1:] == s[si]):
            si += 1
            ti += 1
            continue
        if star_ti < 0:
            return False
        star_si += 1
        si, ti = star_si, star_ti + 1
    return all(t == "*" for t in tokens[ti:])
