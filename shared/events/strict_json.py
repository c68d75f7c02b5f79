"""Strict JSON reading for everything a ministry sends (HTTP bodies, Kafka records). Pure.

`json.loads` alone accepts what RFC 8259 leaves undefined or forbids, and one of its failures is
not a ValueError at all:
- a duplicate key in an object silently keeps the last value (RFC 8259 4: names SHOULD be
  unique; two values for one attribute would be read differently by different parsers);
- ``NaN``, ``Infinity`` and ``-Infinity`` are not JSON;
- deep nesting raises RecursionError (a 2 KB body of 900 nested arrays) or costs stack;
- an integer literal of more than 4300 digits raises a plain ValueError;
- a NUL character (``\u0000``) is legal JSON but cannot be stored: PostgreSQL (under FerretDB)
  refuses it in any text or JSON value, so a stored event holding one would fail every write
  and read of it; CloudEvents 1.0 disallows control characters in its strings anyway.
`loads_strict` refuses each with `InvalidJsonError` and a reason code.
"""

from __future__ import annotations

import json
from typing import Any

# No Shinchoku document nests deeper than 4 (batch → event → data → value); 32 leaves room.
MAX_JSON_DEPTH = 32


class InvalidJsonError(ValueError):
    """The text is not strict JSON; `code` names why (malformed_json, duplicate_key, too_deep)."""

    def __init__(self, message: str, code: str = "malformed_json") -> None:
        super().__init__(message)
        self.code = code


class _DuplicateKeyError(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise _DuplicateKeyError(name)
            seen.add(name)
    return obj


def _no_constant(name: str) -> Any:
    raise InvalidJsonError(f"{name} is not a JSON value")


def depth_exceeds(value: Any, limit: int) -> bool:
    """True when the container `value` nests containers more than `limit` deep (iterative)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        for child in children:
            if isinstance(child, (dict, list)):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False


# One decoder, built once: json.loads with hooks builds a decoder and its scanner per call,
# which costs twenty times the parse of a small event.
_DECODER = json.JSONDecoder(object_pairs_hook=_unique_keys, parse_constant=_no_constant)


def loads_strict(text: bytes | str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    try:
        # JSON exchanged between systems is UTF-8 (RFC 8259 8.1); a leading BOM is ignored,
        # as the RFC allows and json.loads did.
        value = _DECODER.decode(text.decode("utf-8-sig") if isinstance(text, bytes) else text)
    except InvalidJsonError:
        raise
    except _DuplicateKeyError as error:
        raise InvalidJsonError(
            f"the key {error.args[0]!r} occurs twice in one object", "duplicate_key"
        ) from None
    except RecursionError:
        raise InvalidJsonError(f"nested deeper than {max_depth} levels", "too_deep") from None
    except (UnicodeDecodeError, ValueError) as error:  # JSONDecodeError, 4300-digit integers
        raise InvalidJsonError(str(error)) from None
    if isinstance(value, (dict, list)) and depth_exceeds(value, max_depth):
        raise InvalidJsonError(f"nested deeper than {max_depth} levels", "too_deep")
    # The escape is the only way a NUL gets in (JSON forbids raw control characters); look at
    # the decoded strings only when the text holds one, so a "\\u0000" text is not refused.
    escaped = b"\\u0000" in text if isinstance(text, bytes) else "\\u0000" in text
    if escaped and holds_nul(value):
        raise InvalidJsonError("a string holds a NUL character (\\u0000)", "nul_character")
    return value


def holds_nul(value: Any) -> bool:
    """True when any string in `value` (object keys included) holds U+0000 (iterative)."""
    stack: list[Any] = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if "\x00" in node:
                return True
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False
