"""Records in non-Latin scripts survive normalisation, count as words and get a language."""

import numpy as np
import pytest

from service.language import UNDETERMINED, detect, in_other_script, in_vietnamese_letters, resolve
from service.models.multilingual import ChannelWeights, join
from service.models.policy import unusable_text_reason
from service.normalize import Normalizer, dedupe_key


@pytest.mark.parametrize(
    "text",
    ["ลักทรัพย์ในเวลากลางคืน", "चोरी का मामला", "السرقة بالإكراه", "강도살인 형법 제338조"],
)
def test_normaliser_keeps_vowel_signs_and_letters(text):
    # Thai and Devanagari vowel signs are combining marks, which ``\w`` does not match.
    assert Normalizer({}, expand=False)(text) == text.lower()


def test_dedupe_key_tells_thai_words_apart_that_differ_only_in_vowel_signs():
    assert dedupe_key("ฆ่า") != dedupe_key("ฆา")


@pytest.mark.parametrize("text", ["ฆ่า", "盗", "殺人", "강도", "кража"])
def test_short_non_latin_offences_are_words(text):
    assert unusable_text_reason(text) is None


def test_digits_and_single_latin_letters_are_still_not_words():
    assert unusable_text_reason("123") == "no_words"
    assert unusable_text_reason("A1") == "no_words"


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("강도살인 형법 제338조", "ko"),
        ("窃盗罪で逮捕された", "ja"),
        ("盗窃罪 刑法第二百六十四条", "zh"),
        ("ลักทรัพย์ในเวลากลางคืน", "th"),
        ("السرقة بالإكراه", "ar"),
        ("Кража чужого имущества, ч. 2 ст. 158 УК РФ", "ru"),
        ("Pencurian dengan kekerasan Pasal 365 KUHP", "id"),
        ("Tội trộm cắp tài sản theo Điều 173", "vi"),
        ("Robo con intimidación en lugar habitado", "es"),
        ("Theft of livestock by night", "en"),
    ],
)
def test_detects_the_language(text, lang):
    found = detect(text)
    assert found.code == lang
    assert found.source == "detected"
    assert 0 < found.confidence <= 1


def test_no_letters_is_undetermined():
    assert detect("12/03 #4471").code == UNDETERMINED


def test_client_tag_wins_and_is_reduced_to_its_language():
    got = resolve("Theft of livestock", "pt-BR")
    assert (got.code, got.source) == ("pt", "client")
    with pytest.raises(ValueError):
        resolve("x", "not a tag!")


@pytest.mark.parametrize(
    "text,other",
    [
        ("theft of a bicycle", False),
        ("pencurian kendaraan bermotor", False),
        ("trộm cắp tài sản", False),
        ("robo con intimidación", False),
        ("кража имущества", True),
        ("السرقة بالإكراه", True),
        ("ลักทรัพย์", True),
        ("강도살인 형법 제338조", True),
        ("窃盗 theft", True),
        ("ひき逃げ", True),
    ],
)
def test_other_scripts_are_those_the_english_encoder_cannot_read(text, other):
    assert in_other_script(text) is other


def test_channel_weights_scale_only_the_records_in_other_scripts():
    texts = ["theft of a bicycle", "절도", "кража"]
    primary = np.ones((3, 2), dtype=np.float32)
    multilingual = np.ones((3, 3), dtype=np.float32)
    plain = join(primary, multilingual, texts, ChannelWeights(1.5))
    assert plain.shape == (3, 5) and plain.dtype == np.float32
    np.testing.assert_array_equal(plain[:, :2], 1.0)
    np.testing.assert_array_equal(plain[:, 2:], 1.5)
    split = join(primary, multilingual, texts, ChannelWeights(1.0, 0.5, 2.0))
    np.testing.assert_array_equal(split[0], [1, 1, 1, 1, 1])
    np.testing.assert_array_equal(split[1:, :2], 0.5)
    np.testing.assert_array_equal(split[1:, 2:], 2.0)
    assert join(primary[:0], multilingual[:0], [], ChannelWeights()).shape == (0, 5)


@pytest.mark.parametrize(
    "text,vietnamese",
    [
        ("trộm cắp tài sản", True),
        ("cướp giật", True),  # ư only
        ("BLHS 2015, D.123 - giet nguoi", False),  # typed without marks: not detectable
        ("robo con intimidación", False),
        ("vol aggravé", False),
        ("krađa", False),  # đ alone is Croatian too
        ("pencurian kendaraan bermotor", False),
    ],
)
def test_vietnamese_letters_are_those_no_other_latin_language_writes(text, vietnamese):
    assert in_vietnamese_letters(text) is vietnamese


def test_channel_weights_give_vietnamese_records_their_own_scales():
    texts = ["theft of a bicycle", "trộm cắp tài sản", "кража", "trộm 窃盗"]
    primary = np.ones((4, 2), dtype=np.float32)
    multilingual = np.ones((4, 3), dtype=np.float32)
    got = join(primary, multilingual, texts, ChannelWeights(1.0, 0.5, 2.0, 1.5, None))
    np.testing.assert_array_equal(got[0], [1, 1, 1, 1, 1])
    np.testing.assert_array_equal(got[1], [1.5, 1.5, 1, 1, 1])  # None: the common weight
    # Another script decides first: the record's English channel is noise either way.
    np.testing.assert_array_equal(got[2:, :2], 0.5)
    np.testing.assert_array_equal(got[2:, 2:], 2.0)
    weights = ChannelWeights(2.0, 1.0, None, 1.5, 0.5)
    both = join(primary[:2], multilingual[:2], texts[:2], weights)
    np.testing.assert_array_equal(both[0], [1, 1, 2, 2, 2])
    np.testing.assert_array_equal(both[1], [1.5, 1.5, 0.5, 0.5, 0.5])


def test_channel_weights_give_records_read_as_indonesian_their_own_scales():
    texts = [
        "theft of a bicycle from a garage",
        "pencurian dengan pemberatan di rumah korban pada malam hari",
        "trộm cắp tài sản",
        "кража",
    ]
    primary = np.ones((4, 2), dtype=np.float32)
    multilingual = np.ones((4, 3), dtype=np.float32)
    weights = ChannelWeights(1.0, 0.5, 1.5, 1.5, 1.0, 1.0, 2.0)
    got = join(primary, multilingual, texts, weights)
    np.testing.assert_array_equal(got[0], [1, 1, 1, 1, 1])
    np.testing.assert_array_equal(got[1], [1, 1, 2, 2, 2])
    np.testing.assert_array_equal(got[2], [1.5, 1.5, 1, 1, 1])  # its letters decide first
    np.testing.assert_array_equal(got[3], [0.5, 0.5, 1.5, 1.5, 1.5])


def test_neutral_indonesian_weights_do_not_run_the_language_identifier(monkeypatch):
    import service.models.multilingual as channels

    def refuse(text):
        raise AssertionError("identifier called")

    monkeypatch.setattr(channels, "detect", refuse)
    primary, _ = ChannelWeights(1.0, 0.5, 1.5).per_row(["pencurian sepeda motor"])
    assert primary[0, 0] == 1.0
