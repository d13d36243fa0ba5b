"""Vietnamese offence acronyms: the initials police and prosecutors write for offence names.

Vietnamese words are single syllables, and case files abbreviate long offence names to their
initials: "cố ý gây thương tích" (intentional injury) is CYGTT, "lừa đảo chiếm đoạt tài sản"
(fraud) LĐCĐTS, "tàng trữ trái phép chất ma túy" (drug possession) TTTPCMT. A glossary of
names misses them all, so Vietnamese names also give their initials, with the name's gloss.

Short initials collide with other abbreviations, English ones included ("onto", "crdt" in a
California literal), so: five letters or more from any Vietnamese table; four letters only
from the core table of common offences (``vi.csv``: TCTS is theft, trộm cắp tài sản) and only
without a vowel (no word of English, Spanish or Indonesian is spelt so); three or fewer never.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

MIN_LETTERS = 5
MIN_LETTERS_CORE = 4
_VOWELS = frozenset("aeiouy")
# A leading "tội" (offence of) is left out of the initials, as writers do.
_LEADING = ("tội",)


def _initial(word: str) -> str:
    """The first letter of a syllable, without its tone mark but keeping đ (Đ in CĐTS)."""
    first = word[0]
    if first == "đ":
        return first
    return unicodedata.normalize("NFD", first)[0]


def acronym(name: str) -> str:
    """The initials of an offence name, in lower case ("" for a name with a non-word part).

    Words that are numbers stay whole ("người dưới 16 tuổi" gives nd16t).
    """
    words = name.lower().split()
    if words and words[0] in _LEADING:
        words = words[1:]
    if not all(w[0].isalnum() for w in words):
        return ""
    return "".join(w if w.isdigit() else _initial(w) for w in words)


def _usable(initials: str, core: bool) -> bool:
    if len(initials) >= MIN_LETTERS:
        return True
    return core and len(initials) >= MIN_LETTERS_CORE and not (_VOWELS & set(initials))


def acronyms(names: dict[str, str], core: Iterable[str] = ()) -> dict[str, str]:
    """Usable initials of ``names`` (name: gloss, in reading order) with their glosses.

    ``core``: the names of the core table, which may give four-letter initials. Initials two
    names share go to the name read first: the shipped tables are read in name order, so the
    core table comes before the rarer names of the others (TCTS: theft, not tấn công trụ sở,
    an attack on an office).
    """
    core = set(core)
    found: dict[str, str] = {}
    for name, gloss in names.items():
        initials = acronym(name)
        if _usable(initials, name in core):
            found.setdefault(initials, gloss)
    return found
