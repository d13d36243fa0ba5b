"""Shorthand resolution: dropped vowels and cut-off words read as the vocabulary word."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from service.shorthand import ShorthandResolver, abbreviation_cost, tokenizer_words

VOCAB = {
    "fraudulent": 5,
    "conduct": 9,
    "during": 6,
    "driving": 40,
    "hand": 4,
    "husband": 30,
    "pilot": 3,
    "pilots": 3,
    "discharge": 7,
    "refund": 2,
    "order": 20,
    "ordinary": 5,
    "prove": 1,  # below min_count: never a candidate
}


def test_cost_rewards_dropped_vowels_over_dropped_consonants():
    assert abbreviation_cost("drng", "during") == 2.0  # u, i left out
    assert abbreviation_cost("drng", "driving") == 5.0  # i, then the consonant v, then i
    assert abbreviation_cost("pilt", "pilot") == 1.0
    assert math.isclose(abbreviation_cost("pilt", "pilots"), 1.4)  # o, then "s" cut off
    assert abbreviation_cost("ordr", "order") == 1.0


@pytest.mark.parametrize(
    ("token", "word"),
    [("xrdr", "order"), ("order", "order"), ("orderly", "order"), ("odr", "")],
)
def test_cost_is_infinite_when_no_reading_exists(token: str, word: str):
    assert abbreviation_cost(token, word) == math.inf


def test_resolves_shorthand_to_the_plausible_word():
    r = ShorthandResolver(VOCAB)
    assert r("condct drng invest") == "conduct during invest"
    # "husband" is 7x as frequent, but "hnd" skips its consonants s and b: "hand" wins.
    assert r("hnd grenade") == "hand grenade"
    assert r("dischrg pilt refnd ordr") == "discharge pilot refund order"


def test_known_words_numbers_and_short_tokens_are_left_alone():
    r = ShorthandResolver(VOCAB, known_words={"prov"})
    assert r("prov fr 245 a2 order") == "prov fr 245 a2 order"
    # no candidate within the cost bound (four vowels left out of "fraudulent"): unchanged
    assert abbreviation_cost("frdlnt", "fraudulent") == 4.0
    assert r("zqx frdlnt") == "zqx frdlnt"


def test_rare_words_are_not_candidates():
    assert ShorthandResolver(VOCAB).resolve("prv") != "prove"


def test_from_texts_save_and_load_round_trip(tmp_path: Path):
    r = ShorthandResolver.from_texts(["conduct during", "conduct order", "during"])
    assert r.vocabulary == {"conduct": 2, "during": 2, "order": 1}
    r.save(tmp_path / "vocabulary.json")
    again = ShorthandResolver.load(tmp_path / "vocabulary.json")
    assert again.vocabulary == r.vocabulary
    assert again("condct drng") == "conduct during"


def test_tokenizer_words_keeps_whole_ascii_words(tmp_path: Path):
    path = tmp_path / "tokenizer.json"
    path.write_text(
        '{"model": {"vocab": {"[CLS]": 0, "prove": 1, "##ing": 2, "caf\\u00e9": 3, "a1": 4}}}',
        "utf-8",
    )
    assert tokenizer_words(path) == {"prove"}


def test_other_languages_words_are_known_but_never_a_reading(tmp_path: Path):
    r = ShorthandResolver.from_texts(
        ["escape from custody", "escape from prison", "school zone"],
        other_language_texts=["robo cerca de la escuela", "escuela escuela"],
    )
    assert "escuela" not in r.vocabulary and "escuela" in r.other_language_words
    assert r("esc custody") == "escape custody"  # not "escuela"
    assert r("robo cerca escuela") == "robo cerca escuela"  # seen words are left alone
    r.save(tmp_path / "vocabulary.json")
    again = ShorthandResolver.load(tmp_path / "vocabulary.json")
    assert again.other_language_words == r.other_language_words
    assert again("esc escuela") == "escape escuela"


def test_a_text_with_letters_outside_ascii_is_left_alone():
    r = ShorthandResolver({"quackery": 5, "conduct": 9, "during": 6})
    assert r("qua condct") == "quackery conduct"
    assert r("trộm cắp qua condct") == "trộm cắp qua condct"  # Vietnamese: no English reading
    assert r("robo con violación condct") == "robo con violación condct"


def test_a_vocabulary_saved_as_bare_counts_still_loads(tmp_path: Path):
    path = tmp_path / "vocabulary.json"
    path.write_text('{"conduct": 3, "during": 2, "words": 4}', "utf-8")
    r = ShorthandResolver.load(path)
    assert r.vocabulary == {"conduct": 3, "during": 2, "words": 4}
    assert r("condct drng") == "conduct during"
