"""Counts with their noun as the commands print them: `1 sequence`, `2 sequences`."""

from __future__ import annotations


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """`count` and `noun`, the noun plural (`plural`, else `noun` + "s") unless `count` is 1."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def boxes_of_objects(boxes: int, objects: int) -> str:
    """`N boxes of M objects`, as track, retrack, convert and batch report what they wrote."""
    return f"{counted(boxes, 'box', 'boxes')} of {counted(objects, 'object')}"
