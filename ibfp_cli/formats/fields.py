"""Reading and checking the fields of annotation files; errors name the file and the place."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..annotations import Annotations, BoxRecord
from ..errors import FormatError


def parse_float(text: Any, what: str, where: str) -> float:
    """A finite number, or FormatError '<where>: <what> ... is not a number'."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise FormatError(f"{where}: {what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise FormatError(f"{where}: {what} {text!r} is not a finite number")
    return value


def parse_int(text: Any, what: str, where: str) -> int:
    """A whole number ("7" or "7.0"), or FormatError."""
    value = parse_float(text, what, where)
    if not value.is_integer():
        raise FormatError(f"{where}: {what} {text!r} is not a whole number")
    return int(value)


def parse_flag(text: Any, what: str, where: str) -> bool:
    """A 0/1 flag (JSON true/false too), or FormatError."""
    if isinstance(text, bool):
        return text
    if str(text).strip() in ("0", "1"):
        return str(text).strip() == "1"
    raise FormatError(f"{where}: {what} {text!r} must be 0 or 1")


def format_float(value: float) -> str:
    """The shortest text that reads back as exactly the same float (Python's repr)."""
    return repr(float(value))


def load_json(path: Path) -> Any:
    """Parse a JSON file; a syntax or encoding error becomes one FormatError line."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise FormatError(f"{path}: not valid JSON (line {e.lineno}: {e.msg})") from None
    except UnicodeDecodeError:
        raise FormatError(f"{path}: not a UTF-8 text file") from None


def require_ids_from_one(annotations: Annotations, format_name: str) -> None:
    """Formats that number objects from 1 (MOT, CVAT's 0-based ids shifted by one) need ids >= 1."""
    bad = [i for i in annotations.ids() if i < 1]
    if bad:
        raise FormatError(f"{format_name} needs object ids >= 1 (ibfp numbers objects from 1); got id {bad[0]}")


def check_unique(records: Iterable[BoxRecord], path: Path) -> None:
    """Reject a file that gives one object two boxes on the same frame."""
    seen: set[tuple[int, int]] = set()
    for r in records:
        if (r.frame, r.id) in seen:
            raise FormatError(f"{path}: object {r.id} has two boxes on frame {r.frame}")
        seen.add((r.frame, r.id))
