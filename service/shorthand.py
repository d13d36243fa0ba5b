"""Reading shorthand the abbreviation table does not list: "condct drng" -> "conduct during".

Offence code lists abbreviate freely ("rghts", "dischrg", "practce", "airprt"). Most such tokens
are a word with vowels dropped or its end cut off. A token that is neither in the model's clean
training text (the vocabulary) nor a whole word the encoder's tokenizer knows is replaced by the
vocabulary word it most plausibly abbreviates:

- same first letter, the token's letters in order inside the word;
- letters skipped inside the word cost 1 if they are vowels or a doubled letter, 3 otherwise;
  letters cut off at the end cost 0.4 each; candidates costing more than ``max_cost`` are out;
- the best candidate maximises log(count) - cost, so a common word beats a rare one.

The vocabulary is built at training time from the sources no evaluation fold holds out and is
stored with the model, so serving and training read text the same way. Tokens shorter than three
letters, numbers and known words are never touched.

The reading is English code-list shorthand, so only English rows' words are candidates; words of
the other languages' rows are known (never rewritten, never a reading: "esc" is "escape", not
Spanish "escuela"), and a text with a letter outside ASCII (an accent, another script) is left
as it is: vowel-dropping rules rewrite Vietnamese "qua" or Indonesian "ayat" into English.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path

_WORD = re.compile(r"[a-z]+")
_NON_ASCII_LETTER = re.compile(r"[^\W\d_a-z]")  # after lower-casing: accents, other scripts
_VOWELS = frozenset("aeiouy")
_INF = float("inf")
# Unknown tokens read as shorthand per text: offence texts hold a handful; junk holds hundreds.
_MAX_UNKNOWN_PER_TEXT = 64
_CACHE_LIMIT = 100_000  # resolved tokens kept per resolver (least recently used evicted)


def abbreviation_cost(
    token: str, word: str, consonant_skip: float = 3.0, cut_off: float = 0.4
) -> float:
    """Cost of reading ``token`` as an abbreviation of ``word`` (inf when it cannot be one)."""
    n, m = len(token), len(word)
    if n == 0 or m <= n or token[0] != word[0]:
        return _INF
    # best[i]: cheapest way to have read token[:i] with the word's letters so far
    # (the first letters already match).
    best = [_INF] * (n + 1)
    best[1] = 0.0
    for j in range(1, m):
        ch = word[j]
        inner_skip = 1.0 if ch in _VOWELS or ch == word[j - 1] else consonant_skip
        new = [_INF] * (n + 1)
        for i in range(1, n + 1):
            c = best[i]
            if c == _INF:
                continue
            if i < n and token[i] == ch and c < new[i + 1]:
                new[i + 1] = c  # letter read
            skipped = c + (cut_off if i == n else inner_skip)
            if skipped < new[i]:
                new[i] = skipped  # letter left out
        best = new
    return best[n]


class ShorthandResolver:
    """Maps unknown shorthand tokens to the vocabulary words they abbreviate."""

    def __init__(
        self,
        vocabulary: Mapping[str, int],
        known_words: Iterable[str] = (),
        min_count: int = 2,
        max_cost: float = 3.0,
        other_language_words: Iterable[str] = (),
    ) -> None:
        self.vocabulary = dict(vocabulary)  # English words and their counts: the candidates
        self.other_language_words = frozenset(other_language_words) - set(self.vocabulary)
        self.known_words = frozenset(known_words) | self.other_language_words
        self.max_cost = max_cost
        self._by_first: dict[str, list[tuple[str, float]]] = defaultdict(list)
        for word, count in self.vocabulary.items():
            if count >= min_count and len(word) >= 4:
                self._by_first[word[0]].append((word, math.log(count)))
        # Least recently used tokens are dropped when full: input text is open-ended, and a
        # cache that stopped admitting entries would let junk keep new shorthand out for good.
        # lru_cache is thread-safe, and the inference workers call this from several threads.
        self._cached_resolve = functools.lru_cache(maxsize=_CACHE_LIMIT)(self._resolve)

    @classmethod
    def from_texts(
        cls,
        texts: Iterable[str],
        known_words: Iterable[str] = (),
        other_language_texts: Iterable[str] = (),
    ) -> ShorthandResolver:
        """Vocabulary counted over already-normalised English texts; the words of
        ``other_language_texts`` are known but never a reading."""
        return cls(
            Counter(w for t in texts for w in _WORD.findall(t)),
            known_words,
            other_language_words={w for t in other_language_texts for w in _WORD.findall(t)},
        )

    def resolve(self, token: str) -> str:
        """The word ``token`` abbreviates, or ``token`` itself."""
        return self._cached_resolve(token)

    def _resolve(self, token: str) -> str:
        out = token
        if self._unknown(token):
            best_score = -_INF
            for word, log_count in self._by_first.get(token[0], ()):
                if len(word) <= len(token) or not _in_order(token, word):
                    continue
                cost = abbreviation_cost(token, word)
                if cost <= self.max_cost and log_count - cost > best_score:
                    out, best_score = word, log_count - cost
        return out

    def _unknown(self, token: str) -> bool:
        """Whether ``token`` is one the resolver tries to read as shorthand."""
        return len(token) >= 3 and token not in self.vocabulary and token not in self.known_words

    def __call__(self, text: str) -> str:
        """``text`` (already normalised: lower case) with its shorthand tokens resolved.

        Only the first ``_MAX_UNKNOWN_PER_TEXT`` unknown tokens are looked at (each costs a
        search of the vocabulary), so a text of junk costs a bounded amount; the cut is by
        position, never by what is cached, so a text always reads the same.
        """
        if _NON_ASCII_LETTER.search(text):
            return text
        budget = _MAX_UNKNOWN_PER_TEXT

        def replace(match: re.Match[str]) -> str:
            nonlocal budget
            token = match.group(0)
            if not self._unknown(token):
                return token
            if budget <= 0:
                return token
            budget -= 1
            return self.resolve(token)

        return _WORD.sub(replace, text)

    def save(self, path: Path) -> None:
        """Write the vocabulary (English word counts, other languages' words) it reads with."""
        data = {"words": self.vocabulary, "other_language_words": sorted(self.other_language_words)}
        Path(path).write_text(json.dumps(data, sort_keys=True), "utf-8")

    @classmethod
    def load(cls, path: Path, known_words: Iterable[str] = ()) -> ShorthandResolver:
        """Read a vocabulary written by :meth:`save` (or, from older entries, bare counts)."""
        data = json.loads(Path(path).read_text("utf-8"))
        if "words" not in data or not isinstance(data["words"], dict):
            return cls(data, known_words)
        return cls(data["words"], known_words, other_language_words=data["other_language_words"])


def _in_order(token: str, word: str) -> bool:
    """Whether ``token``'s letters appear in ``word`` in order (a cheap filter before costing)."""
    rest = iter(word)
    return all(ch in rest for ch in token)


def tokenizer_words(tokenizer_json: Path) -> set[str]:
    """Whole words in a WordPiece tokenizer's vocabulary (words the encoder reads as one piece)."""
    vocab = json.loads(Path(tokenizer_json).read_text("utf-8"))["model"]["vocab"]
    return {w for w in vocab if w.isascii() and w.isalpha()}
