"""Glossary expansion: English glosses of other languages' offence terms, appended by the
normaliser; and the shipped glossaries are well-formed."""

from __future__ import annotations

import csv
import re
import unicodedata
from pathlib import Path

import pytest

from service.glossary import Glossary, default_glossary_paths, read_glossaries
from service.indonesian import affixed_forms
from service.normalize import Normalizer, glossary_term_form
from service.vietnamese import acronym, acronyms

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
    assert g.glosses("xxpencurian") == []


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


def test_traditional_and_simplified_han_match_each_other() -> None:
    g = Glossary({"窃盗": "theft", "詐騙": "fraud"})
    assert g.glosses("刑法第320條 竊盜罪") == ["theft"]  # Taiwan's traditional characters
    assert g.glosses("电信诈骗案") == ["fraud"]  # a traditional term finds simplified text
    assert g.glosses("強盜") == []  # robbery is not theft: folding joins variants, not words


def test_terms_that_fold_alike_keep_the_first_gloss() -> None:
    g = Glossary({"giết": "killing", "giet": "something else"})
    assert g.glosses("giet") == g.glosses("giết") == ["killing"]


def test_an_indonesian_root_glosses_its_prefixed_forms() -> None:
    assert {"mencuri", "pencuri", "dicuri", "kecuri"} <= set(affixed_forms("curi"))
    # meN- and peN- take the root's first sound and drop p, t, k, s before a vowel
    assert {"memukul", "dipukul", "pemukul"} <= set(affixed_forms("pukul"))
    assert {"menipu", "penipu", "tertipu"} <= set(affixed_forms("tipu"))
    assert {"menyiksa", "penyiksa"} <= set(affixed_forms("siksa"))
    assert {"mengeroyok", "pengeroyok"} <= set(affixed_forms("keroyok"))
    assert {"menganiaya", "penganiaya"} <= set(affixed_forms("aniaya"))
    assert {"merampok", "perampok"} <= set(affixed_forms("rampok"))
    assert "pukul" not in affixed_forms("pukul")  # the bare root is "o'clock" too
    assert "diancam" not in affixed_forms("ancam")  # "diancam pidana": punishable by


def test_a_root_table_glosses_the_forms_and_keeps_listed_terms(tmp_path: Path) -> None:
    listed = tmp_path / "id.csv"
    listed.write_text("term,gloss\npencurian,theft of property\n", encoding="utf-8")
    roots = tmp_path / "id_roots.csv"
    roots.write_text("root,gloss\ncuri,theft\npukul,assault\n", encoding="utf-8")
    table = read_glossaries([listed, roots])
    assert table["pencurian"] == "theft of property"  # a generated form never replaces it
    g = Glossary(table)
    assert g.glosses("motor korban dicurinya semalam") == ["theft"]  # suffix -nya goes on
    assert g.glosses("memukul korban pukul 10 malam") == ["assault"]
    assert g.glosses("pukul 10 malam") == []


def test_a_vietnamese_name_gives_its_initials() -> None:
    assert acronym("cố ý gây thương tích") == "cygtt"
    assert acronym("tội lừa đảo chiếm đoạt tài sản") == "lđcđts"  # without "tội", đ kept
    assert acronym("hiếp dâm người dưới 16 tuổi") == "hdnd16t"


def test_short_initials_come_only_from_the_core_table_and_never_spell_a_word() -> None:
    names = {
        "trộm cắp tài sản": "theft",
        "tấn công trụ sở": "attack on an office",
        "ô nhiễm tiếng ồn": "noise pollution",  # "onto"
        "cướp tài sản": "robbery",  # three letters: never
        "tàng trữ trái phép chất ma túy": "drug possession",
    }
    found = acronyms(names, core={"trộm cắp tài sản", "ô nhiễm tiếng ồn", "cướp tài sản"})
    assert found == {"tcts": "theft", "tttpcmt": "drug possession"}
    assert acronyms(names) == {"tttpcmt": "drug possession"}


def test_vietnamese_tables_gloss_initials_and_keep_listed_terms(tmp_path: Path) -> None:
    core = tmp_path / "vi.csv"
    core.write_text(
        "term,gloss\ntrộm cắp tài sản,theft\ncố ý gây thương tích,assault\n", encoding="utf-8"
    )
    other = tmp_path / "vi_more.csv"
    other.write_text("term,gloss\ntấn công trụ sở,attack on an office\n", encoding="utf-8")
    listed = tmp_path / "zz.csv"
    listed.write_text("term,gloss\ncygtt,listed gloss\n", encoding="utf-8")
    g = Glossary(read_glossaries([core, other, listed], glossary_term_form))
    assert g.glosses(glossary_term_form("Đối tượng TCTS tại chợ")) == ["theft"]
    assert g.glosses(glossary_term_form("CYGTT")) == ["listed gloss"]
    english = tmp_path / "en.csv"
    english.write_text("term,gloss\ntrộm cắp tài sản,theft\n", encoding="utf-8")
    assert "tcts" not in read_glossaries([english])  # initials only from Vietnamese tables


def test_a_vietnamese_table_of_non_offences_gives_no_initials(tmp_path: Path) -> None:
    reports = tmp_path / "vi_nonoffence.csv"
    reports.write_text("term,gloss\nbáo mất giấy tờ tùy thân,lost documents report\n", "utf-8")
    table = read_glossaries([reports], glossary_term_form)
    assert "bmgttt" not in table  # police shorten offence names, not lost-property reports
    assert Glossary(table).glosses(glossary_term_form("Báo mất giấy tờ tùy thân")) == [
        "lost documents report"
    ]


def test_a_long_word_one_slip_from_a_term_takes_its_gloss() -> None:
    g = Glossary({"pencurian": "theft", "pengancaman": "threat", "мошенничеств": "fraud"})
    assert g.glosses("pencurain motor") == ["theft"]  # two letters swapped
    assert g.glosses("pengancman via wa") == ["threat"]  # a letter dropped
    assert g.glosses("pencuriian") == ["theft"]  # a letter added
    assert g.glosses("pencarian data") == []  # a letter changed: another word (search)
    assert g.glosses("pencurian pencurain") == ["theft"]
    assert g.glosses("мошенничесвт") == ["fraud"]


def test_a_misspelling_of_terms_with_different_glosses_takes_none() -> None:
    g = Glossary({"pemerasan": "extortion", "pemerasaan": "something else"})
    assert g.glosses("pemerasn") == ["extortion"]  # one slip from the first only
    assert g.glosses("pemerasanx") == ["extortion"]  # the listed term, continued
    g = Glossary({"abcdefgh": "one", "abcdefhg": "two"})
    assert g.glosses("abcdfgh") == []  # one slip from both


def test_short_words_are_not_read_as_misspellings() -> None:
    assert Glossary({"memaki": "insult"}).glosses("memakai") == []  # "use", not "insult"


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
        assert reader.fieldnames in (["term", "gloss"], ["root", "gloss"])
        column = reader.fieldnames[0]
        rows = list(reader)
    assert len(rows) >= 100, "a glossary should cover the language's offence vocabulary"
    terms = [glossary_term_form(r[column]) for r in rows]
    if column == "root":  # Indonesian roots: one lowercase word, its forms in no English vocab
        assert all(re.fullmatch(r"[a-z]{4,}", t) for t in terms)
    assert len(set(terms)) == len(terms), "a term is listed twice"
    for row, term in zip(rows, terms, strict=True):
        assert re.fullmatch(r"[a-z]+( [a-z]+){0,5}", row["gloss"]), row
        unspaced = unicodedata.name(term[0], "").startswith(_UNSPACED)
        assert len(term) >= (2 if unspaced else 3), row


def test_the_shipped_glossaries_cover_the_languages_the_channel_is_for() -> None:
    shipped = {p.stem for p in default_glossary_paths()}
    assert {"ko", "ja", "zh", "th", "id", "vi", "ru", "ar"} <= shipped


@pytest.mark.parametrize(
    ("text", "wrong"),
    [
        ("وجدت آثار ضرب على جسده", "revenge feud"),  # traces of beating: ثأر inside آثار
        ("ضبط بحوزته سلاحف نادرة", "weapon"),  # turtles: سلاح inside سلاحف
        ("لمسني في الحافلة", "elderly"),  # touched me: مسن inside لمسني
        ("محاولة الحرقة نحو أوروبا", "burned arson"),  # emigration by sea: حرق inside الحرقة
    ],
)
def test_a_shipped_arabic_term_does_not_fire_inside_a_longer_everyday_word(
    text: str, wrong: str
) -> None:
    # Arabic terms match anywhere (clitics join words), so a short stem inside a common word
    # needs the longer word listed with its own gloss; the longest term wins.
    g = Glossary(read_glossaries(default_glossary_paths(), glossary_term_form))
    glosses = g.glosses(Normalizer({})(text))
    assert glosses and wrong not in glosses


def test_marked_text_takes_the_term_written_with_its_marks() -> None:
    g = Glossary({"trộm cáp": "cable theft", "trộm": "theft"})
    assert g.glosses("trộm cắp tài sản") == ["theft"]  # not the cable theft "trộm cáp"
    assert g.glosses("trộm cáp điện") == ["cable theft"]
    assert g.glosses("trom cap dien") == ["cable theft"]  # typed without marks: either reads


def test_a_misspelt_mark_still_matches_where_no_term_has_those_marks() -> None:
    g = Glossary({"giết người": "murder", "cố ý gây thương tích": "assault causing injury"})
    assert g.glosses("giết ngừoi") == ["murder"]
    assert g.glosses("cố ý gây thuơng tích") == ["assault causing injury"]


def test_a_term_with_other_marks_does_not_swallow_a_term_written_as_is() -> None:
    g = Glossary({"tội danh": "criminal charge", "đánh bạc": "gambling"})
    assert g.glosses("điều 321 tội đánh bạc") == ["gambling"]  # not "tội danh" + "bạc"
    assert g.glosses("tội danh trộm cắp") == ["criminal charge"]
    assert g.glosses("tội danh") == ["criminal charge"]


def test_a_word_written_with_other_marks_is_another_word_not_a_slip() -> None:
    # Vietnamese words differ by their marks alone; only marks left out read as a slip.
    g = Glossary(
        {
            "điếm": "prostitution",
            "cháy xe": "vehicle fire",
            "lừa đảo": "fraud",
            "khoả thân": "nudity",
        }
    )
    assert g.glosses("giờ cao điểm") == []  # a rush hour, not a prostitute
    assert g.glosses("chạy xe trên đường") == []  # riding, not a vehicle fire
    assert g.glosses("tội dánh") == []
    assert g.glosses("lùa đảo qua mạng") == ["fraud"]  # the horn of "ư" left out
    assert g.glosses("khỏa thân nơi công cộng") == ["nudity"]  # the tone on the other vowel
    assert g.glosses("cao diem") == ["prostitution"]  # no marks at all: either reads


def test_a_term_listed_without_marks_reads_spanish_letters_but_not_vietnamese_ones() -> None:
    g = Glossary({"cocain": "cocaine", "chung chi": "bribery payoff", "bom": "bomb"})
    assert g.glosses("posesión de cocaína") == ["cocaine"]
    assert g.glosses("làm giả chứng chỉ hành nghề") == []  # a certificate, not a payoff
    assert g.glosses("trộm máy bơm nước") == []  # a pump, not a bomb
    assert g.glosses("chung chi cho can bo") == ["bribery payoff"]


def test_the_indexed_scan_finds_what_a_plain_scan_of_all_terms_finds() -> None:
    # The reference: at each position of the folded text, every folded term longest first
    # (Latin and Cyrillic terms only at a word start; Latin terms folding changed, and short
    # ones, only as whole words); the first written with the text's marks (or where the text
    # has none) wins, else the longest; the scan must give the same glosses on any text.
    import random

    from service.glossary import _is_latin, _word_start_only, fold

    shipped = read_glossaries(default_glossary_paths(), glossary_term_form)
    table: dict[str, str] = {}
    spellings: dict[str, dict[str, str]] = {}
    whole: set[str] = set()
    for term, gloss in shipped.items():
        folded = fold(term)
        table.setdefault(folded, gloss)
        if _is_latin(term) and folded != term:
            spellings.setdefault(folded, {}).setdefault(term, gloss)
        if _is_latin(term) and (folded != term or len(folded) <= 4):
            whole.add(folded)
    terms = sorted(table, key=len, reverse=True)

    def as_written(term: str, written: str) -> str | None:
        if term not in spellings or written.isascii():
            return table[term]
        return spellings[term].get(written, table[term] if written == term else None)

    def reference(text: str) -> list[str]:
        folded = "".join(fold(c) for c in text)
        origin = [k for k, c in enumerate(text) for _ in fold(c)]
        candidates = [t for t in terms if t in folded]
        found: dict[str, None] = {}
        i = 0
        while i < len(folded) - 1:
            hits = []
            for t in candidates:
                end = i + len(t)
                if not folded.startswith(t, i):
                    continue
                if _word_start_only(t) and i and re.match(r"\w", folded[i - 1]):
                    continue
                if t in whole and end < len(folded) and re.match(r"\w", folded[end]):
                    continue
                hits.append((t, as_written(t, text[origin[i] : origin[end - 1] + 1])))
            chosen = next((h for h in hits if h[1] is not None), None)
            if chosen is None and hits:
                chosen = (hits[0][0], table[hits[0][0]])
            if chosen is None:
                i += 1
            else:
                found.setdefault(chosen[1], None)
                i += len(chosen[0])
        return list(found)

    g = Glossary(shipped, misspellings=False)  # the reference reads terms as listed
    rng = random.Random(7)
    originals = rng.sample(sorted(shipped), 400)
    pieces = [*originals, "x", "a", " ", "의", "ๆ", "пра", "ber", "ال", "ё", "ạ", "ắ", "á", "1"]
    for _ in range(1500):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 8)))
        assert g.glosses(text) == reference(text), text
