"""Text normalisation: ONE code path for training and serving.

Agencies write "ASSLT W/DW", "B&E RES NIGHT", "s.18 OAPA 1861". The normaliser lower-cases,
unifies statute references, expands abbreviations from a data table the user can extend
per jurisdiction (CSV ``abbreviation,expansion,jurisdiction``), collapses punctuation, and
(optionally) reads shorthand the table does not list (``service.shorthand``). A registry entry
stores the table and the shorthand vocabulary it was trained with, so serving reads text exactly
the same way.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import re
import unicodedata
from collections.abc import Callable, Iterable
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from service.glossary import Glossary, read_glossaries
from service.language import written_in_another_latin_language

if TYPE_CHECKING:
    from service.shorthand import ShorthandResolver

_STATUTE_MARKERS = re.compile(r"(?:§+|\bsect?\.|\bs\.|\bss\.|\bart\.|\barticle\b|\bsec\b)\s*(?=\d)")
_SPACES = re.compile(r"\s+")


def _combining_marks() -> str:
    """Regex class body of the BMP's combining marks (Unicode categories Mn, Mc, Me).

    ``\\w`` leaves them out, and Thai, Devanagari or Arabic words lose their vowel signs
    without them ("ลักทรัพย์" read as "ล กทร พย"). NFKC has already composed Latin accents.
    """
    marks = [c for c in range(0x300, 0x10000) if unicodedata.category(chr(c)).startswith("M")]
    ranges: list[tuple[int, int]] = []
    for c in marks:
        if ranges and ranges[-1][1] == c - 1:
            ranges[-1] = (ranges[-1][0], c)
        else:
            ranges.append((c, c))
    return "".join(f"\\u{a:04x}-\\u{b:04x}" if a != b else f"\\u{a:04x}" for a, b in ranges)


COMBINING_MARKS = _combining_marks()
# Keep letters, digits, combining marks and the few marks that carry meaning inside tokens
# (& in b&e, / in w/dw).
_PUNCT = re.compile(rf"[^\w\s&/{COMBINING_MARKS}]")
# "W/DEADLY WEAPON", "W/INTENT": "w/" glued to a word means "with".
_WITH_SLASH = re.compile(r"(?<![\w&])w/(?=[a-z]{4,})")
_LONE_MARKS = re.compile(r"(?<!\w)[&/]+(?!\w)|(?<=\s)/|/(?=\s)|/$|^/")


def default_abbreviations_path() -> Path:
    """The abbreviation table shipped with the package."""
    return Path(str(resources.files("service.data").joinpath("abbreviations.csv")))


# Jurisdictions whose abbreviations are English police shorthand (the shipped table's, and
# "merged", which entries trained before 2026-12-07 wrote for every row). Their expansions
# stay out of texts written in another Latin-script language; a user's table for, say, "de"
# expands in any text.
ENGLISH_SHORTHAND = frozenset({"all", "us", "uk", "in", "ph", "merged"})


def read_abbreviations(paths: Iterable[Path]) -> dict[str, str]:
    """Merge abbreviation tables; later files override earlier ones."""
    return {abbr: expansion for abbr, (expansion, _) in _read_tables(paths).items()}


def read_jurisdictions(paths: Iterable[Path]) -> dict[str, str]:
    """Abbreviation -> the jurisdiction of the table row that defines it (as merged by
    :func:`read_abbreviations`)."""
    return {abbr: where for abbr, (_, where) in _read_tables(paths).items()}


def _read_tables(paths: Iterable[Path]) -> dict[str, tuple[str, str]]:
    table: dict[str, tuple[str, str]] = {}
    for path in paths:
        with Path(path).open(encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                abbr = row["abbreviation"].strip().lower()
                if abbr:
                    where = (row.get("jurisdiction") or "all").strip().lower()
                    table[abbr] = (row["expansion"].strip().lower(), where)
    return table


class Normalizer:
    """Callable that turns a raw record text into the form the model sees."""

    def __init__(
        self,
        abbreviations: dict[str, str] | None = None,
        expand: bool = True,
        shorthand: ShorthandResolver | None = None,
        glossary: Glossary | None = None,
        jurisdictions: dict[str, str] | None = None,
    ) -> None:
        self.abbreviations = dict(abbreviations or {})
        # Rows without a jurisdiction count as English shorthand.
        self.jurisdictions = {k: (jurisdictions or {}).get(k, "all") for k in self.abbreviations}
        self._english = frozenset(
            k for k, where in self.jurisdictions.items() if where in ENGLISH_SHORTHAND
        )
        # Glosses are read off the text before abbreviations and shorthand rewrite it (an
        # unseen Indonesian word must not be read as English shorthand first), then appended.
        self.glossary = glossary if glossary else None
        self.expand = expand and bool(self.abbreviations)
        # Shorthand is resolved after the table, so the table's expansions always win.
        self.shorthand = shorthand if expand else None
        if self.expand:
            # Longest first, so "w/int sell" wins over "w/int" and "w/".
            keys = sorted(self.abbreviations, key=len, reverse=True)
            alternation = "|".join(re.escape(k) for k in keys)
            self._pattern: re.Pattern[str] | None = re.compile(
                rf"(?<![\w&])(?:{alternation})(?![\w&])"
            )
        else:
            self._pattern = None

    @classmethod
    def from_files(
        cls,
        paths: Iterable[Path],
        expand: bool = True,
        shorthand: ShorthandResolver | None = None,
        glossaries: Iterable[Path] = (),
    ) -> Normalizer:
        """Build from one or more abbreviation tables (and glossary tables, if any)."""
        paths = list(paths)
        glossary = Glossary(read_glossaries(glossaries, glossary_term_form))
        return cls(
            read_abbreviations(paths),
            expand=expand,
            shorthand=shorthand,
            glossary=glossary,
            jurisdictions=read_jurisdictions(paths),
        )

    def with_shorthand(self, shorthand: ShorthandResolver | None) -> Normalizer:
        """The same tables, reading shorthand with ``shorthand``."""
        return Normalizer(
            self.abbreviations,
            expand=self.expand,
            shorthand=shorthand,
            glossary=self.glossary,
            jurisdictions=self.jurisdictions,
        )

    def __call__(self, text: str) -> str:
        """Normalised text: lower case, statute markers unified, abbreviations expanded."""
        t = unicodedata.normalize("NFKC", text).lower()
        t = _STATUTE_MARKERS.sub("section ", t)
        t = t.replace("\u2019", "'")
        t = _PUNCT.sub(" ", t)
        t = _SPACES.sub(" ", t).strip()
        glosses = self.glossary.glosses(t) if self.glossary is not None else []
        # Abbreviations and shorthand are English readings: a text in another Latin-script
        # language keeps its words (Spanish "para" is not "paraphernalia", Indonesian "bab"
        # (chapter) not "baby", unmarked Vietnamese "toi" (offence) not "toilet"). The
        # identifier runs at most once a text, and only when one of them would rewrite it.
        foreign = _Once(functools.partial(written_in_another_latin_language, t))
        if self.expand:
            t = _WITH_SLASH.sub("with ", t)
        if self._pattern is not None:
            t = self._pattern.sub(self._expander(foreign), t)
        t = _LONE_MARKS.sub(" ", t)
        t = t.replace("/", " / ")
        t = _SPACES.sub(" ", t).strip()
        if self.shorthand is not None:
            read = self.shorthand(t)
            if read != t and not foreign():
                t = read
        return " ".join([t, *glosses]) if glosses else t

    def _expander(self, foreign: Callable[[], bool]) -> Callable[[re.Match[str]], str]:
        """Replacement for the table's matches: English shorthand rows (see
        :data:`ENGLISH_SHORTHAND`) are left as written in a text ``foreign()`` says is in
        another language; a table of another jurisdiction expands in any text."""

        def expand(match: re.Match[str]) -> str:
            key = match.group(0)
            if key in self._english and foreign():
                return key
            return self.abbreviations[key]

        return expand


class _Once:
    """A yes/no answer computed on first use and kept."""

    def __init__(self, compute: Callable[[], bool]) -> None:
        self._compute = compute
        self._answer: bool | None = None

    def __call__(self) -> bool:
        if self._answer is None:
            self._answer = self._compute()
        return self._answer


def glossary_term_form(term: str) -> str:
    """A glossary term in the form record text has when glosses are read off it."""
    t = _STATUTE_MARKERS.sub("section ", unicodedata.normalize("NFKC", term).lower())
    return _SPACES.sub(" ", _PUNCT.sub(" ", t.replace("\u2019", "'"))).strip()


@lru_cache(maxsize=1)
def default_normalizer() -> Normalizer:
    """Normaliser with the shipped abbreviation table."""
    return Normalizer.from_files([default_abbreviations_path()])


def dedupe_key(text: str) -> str:
    """Key under which texts count as identical (review memory, bulk dedupe).

    Case, accents of form, punctuation and spacing do not matter; abbreviations do, so two
    spellings a reviewer might code differently stay apart.
    """
    t = unicodedata.normalize("NFKC", text).lower()
    t = _SPACES.sub(" ", _PUNCT.sub(" ", t)).strip()
    return hashlib.sha1(t.encode("utf-8")).hexdigest()


def text_fingerprint(text: str) -> str:
    """Short hash for logs: lets operators correlate records without logging the text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
