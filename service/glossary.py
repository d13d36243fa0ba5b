"""Offence-term glossaries: English glosses appended to records written in other languages.

The encoder is English. A Korean, Thai or Vietnamese record reaches it as words it cannot read,
and the multilingual channel only places it roughly. The offence vocabulary of a language is a
small, closed set, though (theft, robbery, fraud, the narcotics act, ...), so each glossary
(``service/data/glossary/<language>.csv``: ``term,gloss``, written by us) maps it to English,
and the normaliser appends the glosses of the terms a record contains: "형법 제329조 절도죄"
is read as "... 절도죄 theft". The record's own words stay, for the n-grams and the multilingual
channel.

Matching: a term in a script written without spaces between words (Han, kana, Hangul, Thai) or
with clitics glued to words (Arabic) matches anywhere; a Latin or Cyrillic term matches at the
start of a word, which may continue (suffixes and case endings: ``краж`` matches "кражи").
Where terms overlap, the longest wins ("특수절도" before "절도"). Matching ignores what
writers often leave out or spell either way: Latin diacritics (Vietnamese typed without its tone
marks, "trom cap" for "trộm cắp"; such a term must match a whole word, as must a Latin term of
four letters or fewer, "atm" not in "atmospheric"), ё against е, the Arabic hamza seats,
tāʾ marbūṭa, alif maqṣūra, tatweel and short vowels, and traditional against simplified Han
characters (Taiwan and Hong Kong write "竊盜", the mainland "窃盗"; Korean Hanja and Japanese
kanji are folded alike, so their terms still find their own text). Text written with
marks, though, takes a term written with the same marks before one written with others:
"trộm cắp" (theft) is glossed by "trộm", not by the longer "trộm cáp" (cable theft); a term
whose marks differ is taken only where no term fits as written (a mistyped mark) and no term
written as is starts inside it ("tội đánh bạc" is gambling, not the folded "tội danh"). A
Latin or Cyrillic word of eight letters or more that no term starts also takes the gloss of
the one-word term it misspells by one slip (a letter dropped or added, or two neighbours
swapped: "pencurain", "pengancman", "gratfikasi"), where every such term has the same gloss. Every
glossary applies to every record: short-text language identification is too unreliable to gate
on, and the terms of one language seldom occur in another's records.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from importlib import resources
from itertools import chain
from pathlib import Path

from service.indonesian import affixed_forms
from service.vietnamese import acronyms

_SPACES = re.compile(r"\s+")
_SHORT = 4  # a Latin term this long or shorter matches whole words only
_TYPO_MIN = 8  # a word this long or longer may misspell a term by one slip


def _folding_table() -> dict[int, str | None]:
    """``str.translate`` table of the spelling variants matching ignores (see the module)."""
    table: dict[int, str | None] = {}
    for start, end in ((0x00C0, 0x024F), (0x1E00, 0x1EFF)):  # Latin letters with marks
        for cp in range(start, end + 1):
            base = unicodedata.normalize("NFD", chr(cp))[0]
            if base != chr(cp) and base.isascii() and base.isalpha():
                table[cp] = base.lower()
    table.update({ord("đ"): "d", ord("Đ"): "d", ord("ё"): "е", ord("Ё"): "е"})
    table.update({ord(c): "ا" for c in "أإآٱ"})
    table.update({ord("ى"): "ي", ord("ة"): "ه", ord("ـ"): None})
    table.update({cp: None for cp in range(0x064B, 0x0653)})  # Arabic short vowels, shadda
    table.update(_traditional_to_simplified())
    return table


def _traditional_to_simplified() -> dict[int, str]:
    """Traditional Han characters and their simplified forms, one character for one.

    From OpenCC's character table (``opencc-python-reimplemented``, Apache-2.0), read where it is
    installed: the table is a public standard's data, not ours to copy. A traditional character
    with several simplified forms takes the first, the usual one; multi-character entries are
    left out so that folding keeps the text's length.
    """
    path = Path(str(resources.files("opencc").joinpath("dictionary", "TSCharacters.txt")))
    table: dict[int, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        traditional, _, simplified = line.partition("\t")
        first = simplified.split(" ")[0]
        if len(traditional) == 1 and len(first) == 1 and first != traditional:
            table[ord(traditional)] = first
    return table


_FOLDING = _folding_table()


def fold(text: str) -> str:
    """``text`` with the spelling variants glossary matching ignores folded away."""
    return text.translate(_FOLDING)


def default_glossary_paths() -> list[Path]:
    """The glossaries shipped with the package, one per language, in name order."""
    folder = Path(str(resources.files("service.data").joinpath("glossary")))
    return sorted(folder.glob("*.csv")) if folder.is_dir() else []


def _word_start_only(term: str) -> bool:
    """Does ``term`` match only at a word start (Latin and Cyrillic scripts)?"""
    name = unicodedata.name(term[0], "")
    return name.startswith(("LATIN", "CYRILLIC")) or term[0].isdigit()


def _gives_initials(file_name: str) -> bool:
    """Is this a Vietnamese table of offence names (whose initials police write)?"""
    return file_name.startswith("vi") and not file_name.endswith("_nonoffence.csv")


def read_glossaries(
    paths: Iterable[Path], normalise: Callable[[str], str] | None = None
) -> dict[str, str]:
    """Merge glossary tables (``term,gloss``); later files override earlier ones.

    A root table (``root,gloss``, Indonesian) lists every prefixed form of each root
    (:func:`service.indonesian.affixed_forms`); its forms do not override terms already read.
    The offence names in Vietnamese tables (files named ``vi*.csv``; ``vi.csv`` is the core
    table) also give their initials (:func:`service.vietnamese.acronyms`), which override no
    listed term of any file. Tables of records that are not offences (``*_nonoffence.csv``)
    give none: police shorten offence names, not "lost property report".

    ``normalise`` (a callable) puts each term in the form the normaliser's text has when the
    glossary is applied, so "พ.ร.บ." in a table matches the "พ ร บ" a record becomes.
    """
    table: dict[str, str] = {}
    vietnamese: dict[str, str] = {}
    vietnamese_core: set[str] = set()
    for path in paths:
        with Path(path).open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            columns = set(reader.fieldnames or ())
            if not ({"term", "gloss"} <= columns or {"root", "gloss"} <= columns):
                raise ValueError(f"{path}: a glossary needs the columns term,gloss or root,gloss")
            for row in reader:
                gloss = _SPACES.sub(" ", (row["gloss"] or "").strip().lower())
                if "root" in columns:  # an Indonesian root: each of its forms, listed or not
                    terms = affixed_forms(row["root"] or "") if row["root"] else []
                else:
                    terms = [(row["term"] or "").strip()]
                for term in terms:
                    if normalise is not None:
                        term = normalise(term)
                    if not (term and gloss):
                        continue
                    if "root" in columns:  # a generated form never replaces a listed term
                        table.setdefault(term, gloss)
                    else:
                        table[term] = gloss
                        if _gives_initials(Path(path).name):
                            vietnamese[term] = gloss
                        if Path(path).name == "vi.csv":
                            vietnamese_core.add(term)
    for initials, gloss in acronyms(vietnamese, vietnamese_core).items():
        table.setdefault(initials, gloss)
    return table


class Glossary:
    """Finds a table's terms in normalised text and returns their glosses.

    A scan, left to right, over an index of the terms by their first three characters (two
    for two-character terms; every term has at least two): at each position the longest term
    that starts there, may start there and is written with the text's marks wins (else the
    longest that starts there), and the scan goes on after it. About 50 times the speed of a
    regular expression alternating all terms longest first (thousands of terms).
    """

    def __init__(self, table: dict[str, str], misspellings: bool = True) -> None:
        """``misspellings``: also read long words one slip from a one-word term (see the
        module); off, terms match only as listed."""
        self.table = {t: g for t, g in table.items() if len(t) >= 2}
        # Matching runs on folded text against folded terms. Where two terms fold alike
        # ("giết", "giet"), the first listed keeps its gloss. A Latin term that folding changed
        # must match a whole word: "côn đồ" read as "con do" must not match "con dolo". So must
        # a short Latin term (an abbreviation, mostly): "atm" must not gloss "atmospheric".
        self._folded: dict[str, str] = {}
        # Marked spellings of a folded Latin term, with their glosses: text written with marks
        # must carry the same marks ("tạt" is not "tát"); text without any is read either way.
        self._spellings: dict[str, dict[str, str]] = {}
        whole_word: set[str] = set()
        for term, gloss in self.table.items():
            folded = fold(term)
            if len(folded) < 2:
                continue
            if folded not in self._folded:
                self._folded[folded] = gloss
            if _is_latin(folded) and folded != term:
                self._spellings.setdefault(folded, {}).setdefault(term, gloss)
            if _is_latin(folded) and (folded != term or len(folded) <= _SHORT):
                whole_word.add(folded)
        # Terms of three or more characters are indexed by their first three, two-character
        # terms apart: thousands of Indonesian forms start "me" or "pe", and every word that
        # does would otherwise try them all. Each list runs longest first, and every term of
        # the first is longer than those of the second, so the scan still meets the longest
        # first.
        index: dict[str, list[tuple[str, bool, bool]]] = {}
        pairs: dict[str, list[tuple[str, bool, bool]]] = {}
        for term in sorted(self._folded, key=len, reverse=True):
            entry = (term, _word_start_only(term), term in whole_word)
            if len(term) >= 3:
                index.setdefault(term[:3], []).append(entry)
            else:
                pairs.setdefault(term, []).append(entry)
        self._index = index
        self._pairs = pairs
        self._typos = _typo_index(
            (term, gloss)
            for term, gloss in self._folded.items()
            if misspellings and _word_start_only(term)
        )

    def __bool__(self) -> bool:
        return bool(self._index or self._pairs)

    def glosses(self, text: str) -> list[str]:
        """Glosses of the terms in ``text``, in order of appearance, each once."""
        folded, origin = _fold_with_origin(text)
        seen: dict[str, None] = {}
        i, end = 0, len(folded) - 1
        while i < end:
            found, fallback = self._terms_at(folded, text, origin, i)
            if found is None and fallback is not None:
                # A term the text leaves marks out of stands in for a slip only where no term
                # as written starts inside it: "tội đánh bạc" is "tội" + gambling, not the
                # folded "tội danh" (a charge) and a stray "bạc".
                after = i + len(fallback[0])
                if not any(
                    self._terms_at(folded, text, origin, j)[0]
                    for j in range(i + 1, after)
                    if not _is_word(folded[j - 1])
                ):
                    found = fallback
            if found is None and self._typos and not (i and _is_word(folded[i - 1])):
                found = self._misspelt(folded, i)
            if found is None:
                i += 1
            else:
                seen.setdefault(found[1], None)
                i += len(found[0])
        return list(seen)

    def _terms_at(
        self, folded: str, text: str, origin: list[int] | range, i: int
    ) -> tuple[tuple[str, str] | None, tuple[str, str] | None]:
        """The longest term starting at ``i`` written with the text's marks, and the longest
        that the text could be a slip of, written with marks left out (each with its gloss, or
        None)."""
        none: tuple[tuple[str, bool, bool], ...] = ()
        fallback = None
        candidates = chain(
            self._index.get(folded[i : i + 3], none), self._pairs.get(folded[i : i + 2], none)
        )
        for term, word_start, word_end in candidates:
            if not folded.startswith(term, i):
                continue
            if word_start and i and _is_word(folded[i - 1]):
                continue
            after = i + len(term)
            if word_end and after < len(folded) and _is_word(folded[after]):
                continue
            written = text[origin[i] : origin[after - 1] + 1]
            gloss = self._gloss_as_written(term, written)
            if gloss is not None:
                return (term, gloss), fallback
            if fallback is None:
                slip = self._marks_left_out(term, written)
                fallback = (term, slip) if slip is not None else None
        return None, fallback

    def _misspelt(self, folded: str, i: int) -> tuple[str, str] | None:
        """The word at ``i`` and the gloss of the one-word term it misspells by one letter, if
        the word is long enough and every term it may misspell has that gloss."""
        j = i
        while j < len(folded) and _is_word(folded[j]):
            j += 1
        word = folded[i:j]
        if len(word) < _TYPO_MIN or not _word_start_only(word):
            return None
        glosses = {
            gloss
            for key in (word, *_deletions(word))
            for term, gloss in self._typos.get(key, ())
            if _one_edit_apart(word, term)
        }
        return (word, glosses.pop()) if len(glosses) == 1 else None

    def _gloss_as_written(self, term: str, written: str) -> str | None:
        """The gloss of folded ``term`` where ``written`` carries no marks or the same marks as a
        listed spelling; None where its marks differ from every spelling ("tạt" is not "tát")."""
        spellings = self._spellings.get(term)
        if written.isascii():
            return self._folded[term]
        if spellings is None:
            # A term listed without marks reads text in Spanish or French letters ("cocaína"
            # for "cocain"), not text in letters only Vietnamese writes: "chứng chỉ" (a
            # certificate) is not "chung chi" (a payoff), nor "bơm" (a pump) "bom".
            return None if _beyond_latin1(written) else self._folded[term]
        if written in spellings:
            return spellings[written]
        return self._folded[term] if written == term else None

    def _marks_left_out(self, term: str, written: str) -> str | None:
        """The gloss of a spelling of folded ``term`` that ``written`` could be a slip of: each
        of its words carries only marks of the listed word ("trôm cắp" for "trộm cắp", "khỏa"
        for "khoả"), so a word written with other marks, another word, is not read as the term
        ("điểm", a point, is not "điếm", a prostitute; "chạy xe" is not "cháy xe")."""
        words = written.split()
        for spelling, gloss in self._spellings.get(term, {}).items():
            listed = spelling.split()
            if len(listed) == len(words) and all(
                not _marks(w) - _marks(t) for w, t in zip(words, listed, strict=True)
            ):
                return gloss
        return None


def _beyond_latin1(text: str) -> bool:
    """Does ``text`` hold a Latin letter outside Latin-1 ("ơ", "ạ", "đ": Vietnamese)?"""
    return any(ord(c) > 0xFF and _is_latin(c) for c in text)


def _marks(word: str) -> Counter[str]:
    """The diacritics of a Latin ``word`` (combining marks after decomposition, and the
    stroke of "đ"), counted."""
    marks = Counter(c for c in unicodedata.normalize("NFD", word) if unicodedata.combining(c))
    marks["stroke"] = word.count("đ") + word.count("Đ")
    return +marks


def _fold_with_origin(text: str) -> tuple[str, list[int] | range]:
    """``fold(text)`` and, for each of its characters, its index in ``text``."""
    folded = text.translate(_FOLDING)
    if len(folded) == len(text):  # nothing dropped (Arabic marks, tatweel): one to one
        return folded, range(len(text))
    origin = [k for k, char in enumerate(text) if char.translate(_FOLDING)]
    return folded, origin


def _is_latin(term: str) -> bool:
    """Is ``term`` written in the Latin script (judged by its first character)?"""
    return unicodedata.name(term[0], "").startswith("LATIN")


def _is_word(char: str) -> bool:
    """Is ``char`` a word character (what ``\\w`` matches)?"""
    return char.isalnum() or char == "_"


def _deletions(word: str) -> set[str]:
    """``word`` with one letter left out, each way."""
    return {word[:k] + word[k + 1 :] for k in range(len(word))}


def _typo_index(terms: Iterable[tuple[str, str]]) -> dict[str, list[tuple[str, str]]]:
    """One-word terms that misspellings may stand for, by themselves and each one-letter
    deletion of them: a word and a term one edit apart share a key (symmetric deletion)."""
    index: dict[str, list[tuple[str, str]]] = {}
    for term, gloss in terms:
        if len(term) < _TYPO_MIN or not all(_is_word(c) for c in term):
            continue
        for key in (term, *_deletions(term)):
            index.setdefault(key, []).append((term, gloss))
    return index


def _one_edit_apart(a: str, b: str) -> bool:
    """Are ``a`` and ``b`` one typing slip apart: one letter dropped or added, or two neighbours
    swapped? Not one letter changed: that is how different words differ ("pencarian", search,
    and "pencurian", theft)."""
    if len(a) > len(b):
        a, b = b, a
    k = 0
    while k < len(a) and a[k] == b[k]:
        k += 1
    if len(b) == len(a) + 1:
        return a[k:] == b[k + 1 :]
    return (
        len(a) == len(b)
        and k + 1 < len(a)
        and a[k] == b[k + 1]
        and a[k + 1] == b[k]
        and a[k + 2 :] == b[k + 2 :]
    )
