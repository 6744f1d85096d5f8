"""JSON with comments (VS Code's settings files): to plain JSON, and where each part of the text is.

Strings are never touched: ``//``, ``/*`` and ``,}`` inside a string are its text. The positions let a
rewrite keep the parts it does not own exactly as the user wrote them, comments included.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

BLANK = " \t\r\n\ufeff"
SCALAR_ENDS = ",:]}/" + BLANK


@dataclass(frozen=True)
class Item:
    """One element of an array, or one member of an object (then ``key`` is set)."""

    lead: int  # where its leading comments begin (after the previous comma or bracket and whitespace)
    start: int  # the value (or a member's key)
    end: int  # just past the value
    key: str | None = None
    value_start: int = 0  # a member's value


class Scanner:
    """Positions in one JSONC text; the text is assumed to parse (check it with ``json.loads(strip(text))``)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def skip_space(self, i: int) -> int:
        while i < len(self.text) and self.text[i] in BLANK:
            i += 1
        return i

    def comment_end(self, i: int) -> int:
        """Just past the comment starting at ``i`` (``i`` itself when there is none)."""
        text = self.text
        if text.startswith("//", i):
            end = text.find("\n", i)
            return len(text) if end == -1 else end
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            return len(text) if end == -1 else end + 2
        return i

    def skip_blank(self, i: int) -> int:
        """Past whitespace and comments."""
        while True:
            i = self.skip_space(i)
            end = self.comment_end(i)
            if end == i:
                return i
            i = end

    def string_end(self, i: int) -> int:
        """Just past the string whose opening quote is at ``i``."""
        j = i + 1
        while j < len(self.text):
            if self.text[j] == "\\":
                j += 2
            elif self.text[j] == '"':
                return j + 1
            else:
                j += 1
        return len(self.text)

    def value_end(self, i: int) -> int:
        """Just past the value starting at ``i``."""
        text = self.text
        if text[i] == '"':
            return self.string_end(i)
        if text[i] in "[{":
            j = self.skip_blank(i + 1)
            while j < len(text) and text[j] not in "]}":
                j = self.skip_blank(j + 1 if text[j] in ",:" else self.value_end(j))
            return j + 1
        j = i
        while j < len(text) and text[j] not in SCALAR_ENDS:
            j += 1
        return max(j, i + 1)

    def items(self, i: int) -> list[Item]:
        """The elements or members of the array or object at ``i``."""
        found: list[Item] = []
        is_object = self.text[i] == "{"
        j = i + 1
        while True:
            lead = self.skip_space(j)
            j = self.skip_blank(j)
            if j >= len(self.text) or self.text[j] in "]}":
                return found
            if self.text[j] == ",":
                j += 1
                continue
            found.append(self.member(lead, j) if is_object else Item(lead, j, self.value_end(j)))
            j = found[-1].end

    def member(self, lead: int, i: int) -> Item:
        key_end = self.value_end(i)
        value = self.skip_blank(self.skip_blank(key_end) + 1)  # past the colon
        return Item(lead, i, self.value_end(value), json.loads(self.text[i:key_end]), value)

    def top(self) -> int:
        """Where the top-level value starts."""
        return self.skip_blank(0)


def strip(text: str) -> str:
    """JSONC -> JSON: comments and trailing commas removed, strings left alone; removed text keeps its
    newlines so a parse error's line number still points into the original."""
    scanner = Scanner(text)
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == '"':
            end = scanner.string_end(i)
            out.append(text[i:end])
            i = end
        elif scanner.comment_end(i) > i:
            end = scanner.comment_end(i)
            out.append("\n" * text.count("\n", i, end))
            i = end
        elif ch == "," and text[scanner.skip_blank(i + 1):scanner.skip_blank(i + 1) + 1] in ("]", "}"):
            i += 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)
