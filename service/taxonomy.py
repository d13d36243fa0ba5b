"""The ICCS v1.0 tree: codes and official titles, lookup, parent, path, level, search.

Codes are strings of digits whose length gives the level: section 2, division 4, group 5,
class 6. Leading zeros matter (``0101`` is a division, ``101`` is not a code). Titles are
facts of the public standard and ship with the package; descriptions and inclusions do not.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

from service.errors import InvalidCode, UnknownCode

TAXONOMY_VERSION = "ICCS v1.0"
LEVEL_NAMES = {1: "section", 2: "division", 3: "group", 4: "class"}
_LENGTH_TO_LEVEL = {2: 1, 4: 2, 5: 3, 6: 4}
_LEVEL_TO_LENGTH = {v: k for k, v in _LENGTH_TO_LEVEL.items()}
_CODE_RE = re.compile(r"^\d+$")


@dataclass(frozen=True)
class Category:
    """One ICCS category."""

    code: str
    title: str
    level: int
    parent: str | None
    children: tuple[str, ...] = field(default=())

    @property
    def level_name(self) -> str:
        """``section``, ``division``, ``group`` or ``class``."""
        return LEVEL_NAMES[self.level]

    @property
    def is_leaf(self) -> bool:
        """True when the category has no subcategories."""
        return not self.children


def level_of(code: str) -> int:
    """Level of a syntactically valid code (1..4), from its length alone."""
    return _LENGTH_TO_LEVEL[len(code)]


def ancestor_at(code: str, level: int) -> str:
    """The code's ancestor at ``level`` (the code itself when it is not deeper)."""
    return code[: _LEVEL_TO_LENGTH[min(level, level_of(code))]]


def check_code_syntax(code: object) -> str:
    """Return ``code`` if it has the shape of an ICCS code, else raise :class:`InvalidCode`."""
    if not isinstance(code, str):
        raise InvalidCode("An ICCS code must be a string of digits.", code=repr(code)[:20])
    if not _CODE_RE.match(code) or len(code) not in _LENGTH_TO_LEVEL:
        raise InvalidCode(
            "An ICCS code is 2, 4, 5 or 6 digits with its leading zeros, e.g. '02', '0201'.",
            code=code[:20],
        )
    return code


class Taxonomy:
    """The ICCS tree, immutable once loaded."""

    version = TAXONOMY_VERSION

    def __init__(self, rows: list[tuple[str, str, str]]) -> None:
        children: dict[str, list[str]] = {}
        for code, parent, _ in rows:
            if parent:
                children.setdefault(parent, []).append(code)
        self._by_code: dict[str, Category] = {
            code: Category(
                code=code,
                title=title,
                level=level_of(code),
                parent=parent or None,
                children=tuple(children.get(code, ())),
            )
            for code, parent, title in rows
        }
        self._order = [code for code, _, _ in rows]

    def __len__(self) -> int:
        return len(self._by_code)

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and code in self._by_code

    def __iter__(self):  # type: ignore[no-untyped-def]
        return (self._by_code[c] for c in self._order)

    def validate(self, code: object) -> str:
        """Return the code if it is an ICCS v1.0 code; raise InvalidCode or UnknownCode."""
        checked = check_code_syntax(code)
        if checked not in self._by_code:
            raise UnknownCode(f"'{checked}' is not an ICCS v1.0 code.", code=checked)
        return checked

    def get(self, code: str) -> Category:
        """The category with this code."""
        return self._by_code[self.validate(code)]

    def title(self, code: str) -> str:
        """Official title of a code."""
        return self.get(code).title

    def level(self, code: str) -> int:
        """Level 1 (section) to 4 (class)."""
        return self.get(code).level

    def parent(self, code: str) -> str | None:
        """Parent code, or None for a section."""
        return self.get(code).parent

    def children(self, code: str) -> tuple[str, ...]:
        """Direct subcategories, in the standard's order."""
        return self.get(code).children

    def is_leaf(self, code: str) -> bool:
        """True when the category has no subcategories."""
        return self.get(code).is_leaf

    def path(self, code: str) -> list[str]:
        """Codes from the section down to ``code`` inclusive."""
        cat = self.get(code)
        out = [cat.code]
        while cat.parent:
            cat = self._by_code[cat.parent]
            out.append(cat.code)
        return out[::-1]

    def descendants(self, code: str) -> list[str]:
        """All codes below ``code`` (not including it)."""
        out: list[str] = []
        stack = list(self.children(code))[::-1]
        while stack:
            c = stack.pop()
            out.append(c)
            stack.extend(list(self._by_code[c].children)[::-1])
        return out

    def codes(self, level: int | None = None) -> list[str]:
        """All codes in the standard's order, optionally of one level."""
        return [c for c in self._order if level is None or self._by_code[c].level == level]

    def leaves(self) -> list[str]:
        """Codes without subcategories: the deepest targets of classification."""
        return [c for c in self._order if self._by_code[c].is_leaf]

    def search(self, query: str, level: int | None = None, limit: int = 20) -> list[Category]:
        """Categories whose title (or code prefix) matches every word of ``query``.

        Whole-title matches come first, then by level (broader first), then by code.
        """
        q = query.strip().lower()
        if not q:
            return []
        words = re.findall(r"\w+", q)
        hits: list[tuple[int, int, str]] = []
        for code in self._order:
            cat = self._by_code[code]
            if level is not None and cat.level != level:
                continue
            title = cat.title.lower()
            if code.startswith(q) or (words and all(w in title for w in words)):
                rank = 0 if title == q or code == q else 1
                hits.append((rank, cat.level, code))
        hits.sort()
        return [self._by_code[c] for _, _, c in hits[:limit]]


@lru_cache(maxsize=1)
def load_taxonomy() -> Taxonomy:
    """The ICCS v1.0 tree shipped with the package (cached: it never changes)."""
    text = resources.files("service.data").joinpath("iccs_v1_titles.csv").read_text("utf-8")
    rows = [(r["code"], r["parent"], r["title"]) for r in csv.DictReader(text.splitlines())]
    return Taxonomy(rows)
