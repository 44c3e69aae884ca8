"""A small XML element tree that remembers each element's line, so parsers can name the line of a bad value.

ElementTree drops line numbers; expat gives them. Documents with a DTD are refused outright: annotation files
never need one, and refusing them rules out entity-expansion attacks and external entity fetches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from xml.parsers import expat

from ._common import fail


@dataclass
class Element:
    tag: str
    attrib: dict[str, str]
    line: int
    children: list[Element] = field(default_factory=list)
    text: str = ""

    def find(self, tag: str) -> Element | None:
        return next((c for c in self.children if c.tag == tag), None)

    def findall(self, tag: str) -> list[Element]:
        return [c for c in self.children if c.tag == tag]

    def findtext(self, path: str, default: str | None = None) -> str | None:
        """Text of the element at ``a/b/c`` below this one (stripped), or ``default``."""
        node: Element | None = self
        for part in path.split("/"):
            node = node.find(part) if node is not None else None
        return default if node is None else node.text.strip()


def parse_xml(data: bytes, name: str | Path) -> Element:
    """Parse XML bytes into :class:`Element` nodes; FormatError naming the line for anything malformed."""
    parser = expat.ParserCreate()
    parser.buffer_text = True
    root: list[Element] = []
    stack: list[Element] = []

    def refuse(*_args) -> None:
        raise fail(name, parser.CurrentLineNumber, "a DTD or entity declaration is not allowed here")

    def start(tag: str, attrib: dict[str, str]) -> None:
        element = Element(tag, attrib, parser.CurrentLineNumber)
        if stack:
            stack[-1].children.append(element)
        else:
            root.append(element)
        stack.append(element)

    def end(_tag: str) -> None:
        stack.pop()

    def text(data: str) -> None:
        if stack:
            stack[-1].text += data

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise fail(name, exc.lineno, f"not well-formed XML ({expat.ErrorString(exc.code)})") from None
    except (ValueError, LookupError) as exc:  # e.g. an unknown encoding declaration
        raise fail(name, parser.CurrentLineNumber, f"cannot read this XML ({exc})") from None
    except RecursionError:
        raise fail(name, parser.CurrentLineNumber, "XML nested too deeply") from None
    if not root:
        raise fail(name, 1, "no XML element")
    return root[0]


def _xml_char(ch: str) -> bool:
    """Characters XML 1.0 allows (no control characters, surrogates or U+FFFE/U+FFFF)."""
    o = ord(ch)
    return ch in "\t\n\r" or 0x20 <= o <= 0xD7FF or 0xE000 <= o <= 0xFFFD or o >= 0x10000


def escape_attribute(value: str) -> str:
    """Text for a double-quoted XML attribute (characters that XML 1.0 forbids are dropped)."""
    value = "".join(ch for ch in value if _xml_char(ch))
    return (value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
            .replace("\n", "&#10;").replace("\r", "&#13;").replace("\t", "&#9;"))


def escape_text(value: str) -> str:
    value = "".join(ch for ch in value if _xml_char(ch))
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
