"""Tolerant JSON reading of model text: the first JSON object in a reply, and one named field.

Models asked to answer in JSON often wrap the object in code fences, write prose before or after
it, use single quotes, leave trailing commas, or stop in the middle of a string. Two functions
cover what simulators (role-play replies) and rewards (judge verdicts) need:

- `extract_json_object(text)`: the first balanced `{...}` that parses, tried as strict JSON,
  then with trailing commas removed, then as a Python literal (single quotes, True/False/None).
  None when nothing parses (an object cut off by the token limit is left to `extract_field`).
- `extract_field(text, name)`: the value of one field read with a regular expression, for text
  that is not a parseable object (`"response": "hi` cut mid-string, `Score: 7/10`, `'score': 8`).

Pure functions on strings; nothing here depends on the rest of the project.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any, Iterator

_FENCE = re.compile(r"```[A-Za-z0-9_+-]*[ \t]*\n?(.*?)(?:```|$)", re.S)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")
_PY_LITERALS = {"true": "True", "false": "False", "null": "None"}
_MAX_STARTS = 32  # opening braces tried per text, so a long reply cannot make parsing quadratic


def strip_code_fences(text: str) -> str:
    """The inside of the first ``` fenced block (also an unclosed one), else the text unchanged."""
    match = _FENCE.search(text)
    return match.group(1).strip() if match else text


def _object_spans(text: str) -> Iterator[tuple[int, int, bool]]:
    """(start, end, closed) of each candidate object: from an opening brace to its matching
    closing brace, quotes (double or single) respected; an unclosed one runs to the end."""
    starts = [i for i, ch in enumerate(text) if ch == "{"][:_MAX_STARTS]
    for start in starts:
        depth, quote, escaped = 0, None, False
        for i in range(start, len(text)):
            ch = text[i]
            if quote:
                if escaped:
                    escaped = False
                elif ch == "\\":
                    escaped = True
                elif ch == quote:
                    quote = None
            elif ch in "\"'":
                # an apostrophe inside a word ("don't") is not a quote
                if ch == "'" and i > 0 and text[i - 1].isalnum():
                    continue
                quote = ch
            elif ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    yield start, i + 1, True
                    break
        else:
            yield start, len(text), False


def _loads(candidate: str) -> Any:
    """Parse one candidate object: JSON (raw control characters inside strings allowed, as
    grammar-constrained decoding can produce them), then without trailing commas, then as a Python
    literal with JSON's true/false/null spelled the Python way. None when all fail."""
    attempts = [candidate, _TRAILING_COMMA.sub(r"\1", candidate)]
    for attempt in attempts:
        try:
            return json.loads(attempt, strict=False)
        except ValueError:
            pass
    python = re.sub(r"\b(true|false|null)\b", lambda m: _PY_LITERALS[m.group(1)], attempts[1])
    try:
        return ast.literal_eval(python)
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
        return None


def extract_json_object(text: str) -> dict[str, Any] | None:
    """The first JSON object in `text` that parses (see the module docstring), else None."""
    if not text:
        return None
    sources = [strip_code_fences(text)]
    if sources[0] != text:
        sources.append(text)
    for source in sources:
        for start, end, closed in _object_spans(source):
            value = _loads(source[start:end]) if closed else None
            if isinstance(value, dict):
                return value
    return None


def _key_pattern(name: str) -> re.Pattern[str]:
    return re.compile(r"(?<![\w])[\"']?" + re.escape(name) + r"[\"']?\s*[:=]\s*", re.I)


def _read_quoted(text: str, quote: str) -> str:
    """The string starting right after an opening quote, unescaped; runs to the end of the text
    when the closing quote is missing (a reply cut off by the token limit)."""
    out, escaped = [], False
    escapes = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "'": "'", "\\": "\\", "/": "/"}
    for ch in text:
        if escaped:
            out.append(escapes.get(ch, "\\" + ch))
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == quote:
            return "".join(out)
        else:
            out.append(ch)
    return "".join(out).rstrip().rstrip("}").rstrip()


def extract_field(text: str, name: str) -> str | None:
    """The value of field `name` in text that may not be valid JSON, or None when absent.

    Accepts `"name": "value"`, `'name': 'value'`, `name: value` and `name = value`, the key in any
    case. A quoted value is unescaped and may be unterminated; an unquoted value runs to the end
    of its line (a trailing comma or brace removed).
    """
    if not text:
        return None
    match = _key_pattern(name).search(text)
    if not match:
        return None
    rest = text[match.end():]
    if rest[:1] in ("\"", "'"):
        return _read_quoted(rest[1:], rest[0]).strip()
    line = rest.split("\n", 1)[0]
    return line.strip().rstrip(",}").strip() or None
