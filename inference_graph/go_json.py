"""Go's encoding/json where KServe's router decodes or re-encodes a body: ``json.Valid``,
``json.Unmarshal`` into ``interface{}``, ``json.Marshal`` of what it decoded, and
``mapPredictionsToInstances``."""
from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from typing import Any

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_HTML_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_HTML_RE = re.compile("[<>&\u2028\u2029]")


def reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def json_valid(body: bytes | None) -> tuple[bool, Any]:
    """(valid JSON?, value) - Go's json.Valid: strict JSON, no NaN/Infinity."""
    if not body:
        return False, None
    try:
        return True, json.loads(body, parse_constant=reject_constant)
    except (ValueError, RecursionError):  # incl. UnicodeDecodeError, JSONDecodeError; absurd nesting
        return False, None


class GoDecodeError(ValueError):
    """What json.Unmarshal would refuse (its message as ``str``)."""


def go_decode(body: bytes) -> Any:
    """json.Unmarshal into ``interface{}``: numbers become float64, invalid UTF-8 becomes U+FFFD."""
    if not body.strip():
        raise GoDecodeError("unexpected end of JSON input")
    try:
        value = json.loads(body.decode("utf-8", "replace"), parse_int=float, parse_float=float,
                           parse_constant=reject_constant)
    except RecursionError:
        raise GoDecodeError("exceeded max depth") from None
    except ValueError:
        first = body.lstrip()[:1].decode("latin-1")
        raise GoDecodeError(f"invalid character {first!r} looking for beginning of value"
                            if first not in '{["-0123456789tfn' else "invalid JSON") from None
    _check_finite(value)
    return value


def _check_finite(value: Any) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise GoDecodeError("json: cannot unmarshal number into Go value of type float64")
    if isinstance(value, dict):
        for v in value.values():
            _check_finite(v)
    elif isinstance(value, list):
        for v in value:
            _check_finite(v)


def _go_float(f: float) -> str:
    # strconv.FormatFloat(f, 'f' or 'e', -1, 64) as encoding/json picks it: shortest digits.
    if f != 0 and (abs(f) < 1e-6 or abs(f) >= 1e21):
        text = repr(f)
        return text[:-2] + text[-1] if re.search(r"e-0\d$", text) else text
    return format(Decimal(repr(f)).normalize(), "f")


def _go_string(s: str) -> str:
    text = json.dumps(_LONE_SURROGATE.sub("\ufffd", s), ensure_ascii=False)
    return _HTML_RE.sub(lambda m: _HTML_ESCAPES[m.group()], text)


def _go_json(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        return _go_float(float(value))
    if isinstance(value, str):
        return _go_string(value)
    if isinstance(value, list):
        return "[" + ",".join(_go_json(v) for v in value) + "]"
    items = sorted(((_LONE_SURROGATE.sub("\ufffd", k), v) for k, v in value.items()),
                   key=lambda kv: kv[0].encode("utf-8"))
    return "{" + ",".join(f"{_go_string(k)}:{_go_json(v)}" for k, v in items) + "}"


def go_marshal(value: Any) -> bytes:
    """json.Marshal of a decoded ``interface{}``: map keys sorted, floats in Go's shortest form,
    ``<``, ``>``, ``&``, U+2028 and U+2029 escaped."""
    return _go_json(value).encode("utf-8")


class _Pairs(list):
    """A JSON object's (key, value) pairs, told apart from an array."""


def map_predictions_to_instances(data: bytes) -> bytes:
    """``mapPredictionsToInstances``: Go decodes the request into ``{predictions, instances}``
    (keys matched case-insensitively, other keys dropped); when that succeeds and ``predictions``
    is a non-empty list, the request becomes ``{"instances": predictions}``; else it goes as is."""
    try:
        pairs = json.loads(data.decode("utf-8", "replace"), object_pairs_hook=_Pairs, parse_int=float,
                           parse_float=float, parse_constant=reject_constant)
    except (ValueError, RecursionError):
        return data
    if not isinstance(pairs, _Pairs):
        return data  # null decodes to nothing to move; an array or scalar fails the decode
    fields: dict[str, Any] = {}
    for key, value in pairs:
        field = key.casefold()
        if field in ("predictions", "instances"):
            if value is not None and (not isinstance(value, list) or isinstance(value, _Pairs)):
                return data  # a type mismatch is a decode error: the request goes unchanged
            fields[field] = value
    predictions = fields.get("predictions")
    if not predictions:
        return data
    try:
        restored = [_plain(v) for v in predictions]
        _check_finite(restored)
    except GoDecodeError:
        return data
    return b'{"instances":' + go_marshal(restored) + b"}"


def _plain(value: Any) -> Any:
    """Pairs back to dicts, the last duplicate winning (Go's map)."""
    if isinstance(value, _Pairs):
        return {k: _plain(v) for k, v in value}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value

