"""Glossary expansion: English glosses of other languages' offence terms, appended by the
normaliser; and the shipped glossaries are well-formed."""

from __future__ import annotations

import csv
import re
import unicodedata
from pathlib import Path

import pytest

from service.glossary import Glossary, default_glossary_paths, read_glossaries
from service.normalize import Normalizer, glossary_term_form

TABLE = {
    "절도": "theft",
    "특수절도": "aggravated theft",
    "краж": "theft",
    "pencurian": "theft",
    "ยาบ้า": "methamphetamine",
    "พ ร บ": "act",
    "سرقة": "theft",
}


def test_a_term_inside_a_word_of_an_unspaced_script_is_glossed() -> None:
    g = Glossary(TABLE)
    assert g.glosses("형법 제329조 절도죄") == ["theft"]
    assert g.glosses("السرقة بالإكراه") == ["theft"]
    assert g.glosses("ครอบครองยาบ้าเพื่อจำหน่าย") == ["methamphetamine"]


def test_the_longest_overlapping_term_wins() -> None:
    assert Glossary(TABLE).glosses("특수절도 미수") == ["aggravated theft"]


def test_latin_and_cyrillic_terms_match_only_at_a_word_start() -> None:
    g = Glossary(TABLE)
    assert g.glosses("кражи из автомобиля") == ["theft"]
    assert g.glosses("пракражи") == []
    assert g.glosses("pencuriannya") == ["theft"]
    assert g.glosses("xpencurian") == []


def test_a_short_latin_term_matches_only_a_whole_word() -> None:
    g = Glossary({"atm": "cash machine", "краж": "theft"})
    assert g.glosses("skimmer on atm") == ["cash machine"]
    assert g.glosses("pollution atmosphérique") == []
    assert g.glosses("кражи") == ["theft"]  # Cyrillic stems keep their case endings


def test_each_gloss_is_given_once_in_order_of_appearance() -> None:
    g = Glossary(TABLE | {"ลักทรัพย์": "theft"})
    assert g.glosses("ยาบ้า ลักทรัพย์ ยาบ้า ลักทรัพย์") == ["methamphetamine", "theft"]


def test_the_normaliser_appends_glosses_and_keeps_the_record_words() -> None:
    norm = Normalizer({}, glossary=Glossary(TABLE))
    assert norm("형법 제329조 절도죄!") == "형법 제329조 절도죄 theft"
    assert norm("Theft of a bicycle") == "theft of a bicycle"


def test_terms_are_read_in_the_form_record_text_takes() -> None:
    # "พ.ร.บ." becomes "พ ร บ" in a record; a table that writes it with dots still matches.
    assert glossary_term_form("พ.ร.บ.") == "พ ร บ"
    norm = Normalizer({}, glossary=Glossary({glossary_term_form("พ.ร.บ."): "act"}))
    assert norm("ผิด พ.ร.บ. อาวุธปืน").endswith(" act")


def test_glosses_are_read_before_abbreviations_rewrite_the_text() -> None:
    # The abbreviation table would turn "curas" into English words; the gloss still comes.
    norm = Normalizer({"curas": "cure as"}, glossary=Glossary({"curas": "violent theft"}))
    assert norm("kasus curas") == "kasus cure as violent theft"


def test_matching_ignores_vietnamese_tone_marks_yo_and_arabic_spelling_variants() -> None:
    g = Glossary({"trộm cắp": "theft", "краж": "theft", "اتجار بالبشر": "human trafficking"})
    assert g.glosses("bi trom cap xe may") == ["theft"]
    assert g.glosses("trom capa") == []  # a folded Latin term matches whole words only
    assert g.glosses("trộm cắp tài sản") == ["theft"]
    assert g.glosses("кражи") == ["theft"]
    assert Glossary({"пошёл": "went"}).glosses("пошел") == ["went"]
    assert g.glosses("الإتجار بالبشر") == ["human trafficking"]
    assert Glossary({"سرقة": "theft"}).glosses("سرقه السيارة") == ["theft"]


def test_terms_that_fold_alike_keep_the_first_gloss() -> None:
    g = Glossary({"giết": "killing", "giet": "something else"})
    assert g.glosses("giet") == g.glosses("giết") == ["killing"]


def test_a_table_without_its_columns_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("word,english\n절도,theft\n", encoding="utf-8")
    with pytest.raises(ValueError, match="term,gloss"):
        read_glossaries([bad])


def test_an_empty_glossary_changes_nothing() -> None:
    assert not Glossary({})
    assert Normalizer({}, glossary=Glossary({}))("절도") == "절도"


_UNSPACED = ("CJK", "HIRAGANA", "KATAKANA", "HANGUL", "THAI")


@pytest.mark.parametrize("path", default_glossary_paths(), ids=lambda p: p.stem)
def test_a_shipped_glossary_is_well_formed(path: Path) -> None:
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == ["term", "gloss"]
        rows = list(reader)
    assert len(rows) >= 100, "a glossary should cover the language's offence vocabulary"
    terms = [glossary_term_form(r["term"]) for r in rows]
    assert len(set(terms)) == len(terms), "a term is listed twice"
    for row, term in zip(rows, terms, strict=True):
        assert re.fullmatch(r"[a-z]+( [a-z]+){0,5}", row["gloss"]), row
        unspaced = unicodedata.name(term[0], "").startswith(_UNSPACED)
        assert len(term) >= (2 if unspaced else 3), row


def test_the_shipped_glossaries_cover_the_languages_the_channel_is_for() -> None:
    shipped = {p.stem for p in default_glossary_paths()}
    assert {"ko", "ja", "zh", "th", "id", "vi", "ru", "ar"} <= shipped


def test_the_scan_finds_what_one_regular_expression_of_all_terms_finds() -> None:
    # The reference: every folded term in one alternation, longest first, Latin and Cyrillic
    # terms behind a word-start assertion (and a word-end one for Latin terms folding changed
    # and short Latin terms),
    # run on the folded text; the scan must give the same glosses on any text.
    import random

    from service.glossary import _is_latin, _word_start_only, fold

    shipped = read_glossaries(default_glossary_paths(), glossary_term_form)
    table: dict[str, str] = {}
    whole: set[str] = set()
    for term, gloss in shipped.items():
        if fold(term) not in table:
            table[fold(term)] = gloss
            if _is_latin(term) and (fold(term) != term or len(fold(term)) <= 4):
                whole.add(fold(term))
    terms = sorted(table, key=len, reverse=True)

    def alternative(t: str) -> str:
        start = r"(?<!\w)" if _word_start_only(t) else ""
        return start + re.escape(t) + (r"(?!\w)" if t in whole else "")

    pattern = re.compile("|".join(alternative(t) for t in terms))

    def reference(text: str) -> list[str]:
        return list(dict.fromkeys(table[m.group(0)] for m in pattern.finditer(fold(text))))

    g = Glossary(shipped)
    rng = random.Random(7)
    originals = rng.sample(sorted(shipped), 400)
    pieces = [*originals, "x", "a", " ", "의", "ๆ", "пра", "ber", "ال", "ё", "ạ", "1"]
    for _ in range(2000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 8)))
        assert g.glosses(text) == reference(text), text
