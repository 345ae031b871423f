"""GJSON conditions evaluated as KServe's router evaluates them: ``gjson.GetBytes(body, path).Exists()``
of tidwall/gjson v1.18 (the version KServe's go.mod pins), written anew for parsed JSON.

Why not the ``gjson`` package (gjson-py): it raises both where Go finds nothing and on much of Go's
syntax - an unquoted query value such as ``#(decision_picker==ERROR)``, which Go compares as the
string ``ERROR``, raises there - so an exception cannot tell "no match" from "not understood", and
every KServe e2e graph would take the wrong branch. Here a path is walked the way Go walks it, each
component split by ``gjson_path`` as Go splits it for the value at hand, and a query compares as Go
compares (a bare value is a string; against a number it is parsed as Go's ``strconv.ParseFloat``
would, 0 when it is not a number).

Syntax outside this subset raises ``gjson_path.UnsupportedCondition``; ``gjson_path.check`` finds it
when the graph loads. Two corner cases are not followed: Go's 10,000-steps-per-character limit on
``%`` patterns, and a path on a *string* document (Go scans the string's text for a ``{``); neither
occurs in a condition written for JSON bodies.
"""
from __future__ import annotations

import json
import math
import re
from typing import Any

from inference_graph.go_json import reject_constant
from inference_graph.gjson_path import (
    GO_MODIFIERS, ArrayPath, UnsupportedCondition, array_path, modifier_name, object_path, sub_selectors,
)


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


def parse(body: bytes | None) -> tuple[bool, Any]:
    """(``gjson.ValidBytes(body)``, the document): objects as ``Obj``, numbers as float (Go's
    ``Result.Num``), strings, True/False/None, lists."""
    if not body:
        return False, None
    try:
        # surrogateescape: Go's validator does not check UTF-8, so invalid bytes must not invalidate.
        text = body.decode("utf-8", "surrogateescape")
        return True, json.loads(text, object_pairs_hook=Obj, parse_int=float, parse_float=float,
                                parse_constant=reject_constant)
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
    this module (``gjson_path.check`` finds that at load time)."""
    return get(doc, path) is not MISSING


def gjson_exists(doc: Any, path: str | None) -> bool:
    """Go's ``gjson.Get(json, path).Exists()`` on a parsed (plain Python) document."""
    return exists(from_python(doc), path or "")


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
            name, after = modifier_name(path)
            if name in GO_MODIFIERS:
                if name != "this" or after.startswith(":"):
                    raise UnsupportedCondition(f"modifier in {path!r}")
                return get(doc, after[1:]) if after else doc
        if path[0] == "{":
            raise UnsupportedCondition(f"multipath in {path!r}")
        if path[0] == "[":
            subs, after, ok = sub_selectors(path)
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
    rp = object_path(path)
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
    rp = array_path(path)
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


def _query_matches(rp: ArrayPath, value: Any) -> bool:
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
