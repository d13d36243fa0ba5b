"""Language of a record text: what the client says, else what py3langid detects.

py3langid (a naive Bayes model over byte n-grams, shipped inside the package) answers in
about 0.1 ms. Short police shorthand carries little signal, so two things make it steadier:
the candidates are limited to the languages agencies write records in, and a text in a
script that belongs to one of them (Hangul, kana, Thai, Arabic, Cyrillic) is decided by its
script. Han characters without kana are Chinese.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

# Languages the detector may answer; "und" when nothing is detectable (no letters).
CANDIDATES = (
    "en", "es", "fr", "de", "pt", "it", "nl", "ko", "ja", "zh", "th", "ru", "ar", "id", "vi",
    "tr", "pl", "uk",
)  # fmt: skip
UNDETERMINED = "und"
_TAG = re.compile(r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$")

# First matching script decides; order matters (kana before Han: Japanese mixes both).
_SCRIPTS: tuple[tuple[str, str], ...] = (
    ("HANGUL", "ko"),
    ("HIRAGANA", "ja"),
    ("KATAKANA", "ja"),
    ("THAI", "th"),
    ("ARABIC", "ar"),
    ("CJK", "zh"),
)


# Letters of the scripts the English encoder's Latin vocabulary cannot read: Cyrillic, Arabic,
# Thai, Hangul, kana and Han (service/models/multilingual.py weighs such records' channels).
_OTHER_SCRIPT = re.compile(
    "[\u0400-\u04ff\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff"
    "\u0e00-\u0e7f\u1100-\u11ff\u3130-\u318f\uac00-\ud7af\u3040-\u30ff"
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]"
)


# Letters only Vietnamese writes: the horned ơ and ư, and the vowels with a tone mark of the
# Latin Extended Additional block (ạ, ả, ấ ... ỹ). "đ" and "ă" are left out: Croatian and
# Romanian write them too.
_VIETNAMESE_LETTERS = re.compile("[\u01a0\u01a1\u01af\u01b0\u1ea0-\u1ef9]")


def in_vietnamese_letters(text: str) -> bool:
    """Whether ``text`` holds a letter only Vietnamese writes (ơ, ư, or a vowel with a tone
    mark such as ạ, ế, ỹ). Neither encoder reads Vietnamese; see ``ChannelWeights``."""
    return _VIETNAMESE_LETTERS.search(text) is not None


def written_in_another_latin_language(text: str) -> bool:
    """Whether a Latin-script ``text`` is written in a language other than English: it holds
    a letter only Vietnamese writes, or py3langid gives English a probability under 0.005.

    The normaliser's English abbreviations stay out of such texts: Spanish "para" is not
    "paraphernalia", nor French "vol" (theft) "voluntary". A text in another script is not
    such a text: the Latin words in a Korean or Arabic record ("DUI", "GBH") are English.
    Of the texts holding a table abbreviation, the bound takes none of the national lists'
    4,155 and none of our 1,753 English rows, and 503 of our 508 Spanish, 176 of 262 French.
    English's own probability is the test, not the top language's: terse shorthand often
    reads as Dutch or French (0.83 for "PASS/YIELD VIOL:MEET VEH") while English stays likely.
    """
    if in_other_script(text):
        return False
    if in_vietnamese_letters(text):
        return True
    if not any(ch.isalpha() for ch in text):
        return False
    ranked = _identifier().rank(text)
    english = dict(ranked).get("en", 0.0)
    top, top_probability = ranked[0]
    return float(english) < _ENGLISH_AT_LEAST or (
        top == "vi" and float(top_probability) >= _UNMARKED_VIETNAMESE_AT
    )


def in_other_script(text: str) -> bool:
    """Whether ``text`` holds a letter in a script other than Latin that agencies write in
    (Cyrillic, Arabic, Thai, Hangul, kana, Han)."""
    return _OTHER_SCRIPT.search(text) is not None


# Below this probability of English (py3langid, over CANDIDATES), a Latin text is written in
# another language.
_ENGLISH_AT_LEAST = 0.005
# Vietnamese typed without marks ("toi cuop tai san") often leaves English likely enough; read
# as Vietnamese at 0.5 or more, it is Vietnamese (no national-list text is).
_UNMARKED_VIETNAMESE_AT = 0.5


@dataclass(frozen=True)
class Language:
    """A record's language: ISO 639-1 code, how sure, and where it came from."""

    code: str
    confidence: float
    source: str  # "client" (sent with the record) or "detected"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return {"code": self.code, "confidence": self.confidence, "source": self.source}


@lru_cache(maxsize=1)
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    ident.set_languages(list(CANDIDATES))
    return ident


def _by_script(text: str) -> str | None:
    seen: set[str] = set()
    for ch in text:
        if ch.isalpha() and ord(ch) > 0x2FF:
            name = unicodedata.name(ch, "")
            for script, lang in _SCRIPTS:
                if name.startswith(script) or (script == "CJK" and "CJK" in name):
                    seen.add(lang)
                    break
            else:
                if name.startswith("CYRILLIC"):
                    seen.add("cyrillic")
    for _, lang in _SCRIPTS:
        if lang in seen:
            return lang
    return None


def detect(text: str) -> Language:
    """The most likely language of ``text`` among :data:`CANDIDATES`."""
    if not any(ch.isalpha() for ch in text):
        return Language(UNDETERMINED, 0.0, "detected")
    script = _by_script(text)
    if script is not None:
        return Language(script, 1.0, "detected")
    code, prob = _identifier().classify(text)
    return Language(str(code), round(float(prob), 3), "detected")


def resolve(text: str, declared: str | None) -> Language:
    """The client's tag (primary subtag, lower case) when given, else the detected language."""
    if declared:
        if not _TAG.match(declared):
            raise ValueError(f"not a BCP 47 language tag: {declared!r}")
        return Language(declared.split("-")[0].lower(), 1.0, "client")
    return detect(text)
