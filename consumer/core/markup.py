"""Building HTML and SVG text that is escaped by construction.

``Html`` marks text that is already markup; every other string handed to ``tag`` (as an
attribute value or as content) is escaped, so a value taken from data, such as a campaign
name from a feeds file, can never become markup.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping

__all__ = ["Html", "join", "tag", "text"]


class Html(str):
    """Text that is markup already: ``tag`` and ``join`` insert it as it is."""

    __slots__ = ()


def text(value: object) -> Html:
    """``value`` as text content: ``&``, ``<``, ``>`` and both quotes escaped."""
    if isinstance(value, Html):
        return value
    return Html(html.escape(str(value), quote=True))


def join(parts: Iterable[object]) -> Html:
    """Pieces of content one after the other (strings escaped, ``Html`` as it is)."""
    if isinstance(parts, str):  # a string is iterable too, one character at a time
        raise TypeError("join takes pieces of content, not one string")
    return Html("".join(text(part) for part in parts))


def tag(
    name: str,
    attributes: Mapping[str, object | None] | None = None,
    *content: object,
    void: bool = False,
) -> Html:
    """An element: attributes with a None value are left out, the rest are escaped.

    ``void`` writes an empty element as ``<name .../>``, which both HTML and SVG read,
    and keeps the page well-formed XML, which the tests parse it as.
    """
    attrs = "".join(
        f' {key}="{text(value)}"' for key, value in (attributes or {}).items() if value is not None
    )
    if void:
        if content:
            raise ValueError(f"<{name}> is written empty but was given content")
        return Html(f"<{name}{attrs}/>")
    return Html(f"<{name}{attrs}>{join(content)}</{name}>")
