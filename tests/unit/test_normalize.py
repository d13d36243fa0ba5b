from pathlib import Path

from service.normalize import Normalizer, dedupe_key, default_normalizer, text_fingerprint


def test_police_shorthand_expands():
    n = default_normalizer()
    assert n("ASSLT W/DW") == "assault with deadly weapon"
    assert n("POSS CS W/INT SELL") == "possession controlled substance with intent to sell"
    assert n("B&E RES NIGHT") == "breaking and entering residence night"
    assert n("THEFT FR MV") == "theft from motor vehicle"
    # "acc" is an accident, except before what one accesses (longest entry wins).
    assert n("LEAVE SCENE OF ACC") == "leave scene of accident"
    assert n("USE ACC CARD W/O CONSENT") == "use access card without consent"


def test_statute_references_unified():
    n = default_normalizer()
    assert "section 18" in n("Wounding with intent, s.18 OAPA 1861")
    assert "section 379" in n("Theft § 379")


def test_expansion_is_word_bounded():
    n = default_normalizer()
    # "poss" inside a word must not expand.
    assert n("possible") == "possible"
    assert n("Assault") == "assault"


def test_user_table_extends_and_overrides(tmp_path: Path):
    table = tmp_path / "de.csv"
    table.write_text("abbreviation,expansion,jurisdiction\nkv,koerperverletzung,de\n", "utf-8")
    n = Normalizer.from_files([table])
    assert n("gefaehrliche KV") == "gefaehrliche koerperverletzung"


def test_expansion_can_be_switched_off():
    n = Normalizer({"asslt": "assault"}, expand=False)
    assert n("ASSLT") == "asslt"


def test_dedupe_key_ignores_case_and_punctuation():
    assert dedupe_key("Theft, of bike!") == dedupe_key("  theft of BIKE ")
    assert dedupe_key("theft") != dedupe_key("theft of bike")


def test_fingerprint_does_not_contain_text():
    fp = text_fingerprint("John Smith assaulted")
    assert len(fp) == 12 and "john" not in fp.lower()


def test_glued_with_and_filler_words():
    n = default_normalizer()
    assert n("ASSAULT W/DEADLY WEAPON:GBI") == "assault with deadly weapon great bodily injury"
    assert n("FALSE BOMB/ETC REP:PO/ETC") == "false bomb rep police officer"
    assert n("W/O CONSENT") == "without consent"


def test_shorthand_is_read_after_the_table():
    from service.shorthand import ShorthandResolver

    resolver = ShorthandResolver({"conduct": 5, "during": 5, "weapon": 5, "dangerous": 3})
    norm = Normalizer({"wpn": "weapon"}, shorthand=resolver)
    assert norm("DISORDERLY CONDCT DRNG event, WPN") == "disorderly conduct during event weapon"
    # The table's expansion wins over the vocabulary, and switching expansion off turns both off.
    assert Normalizer({"drng": "dangerous"}, shorthand=resolver)("drng") == "dangerous"
    off = Normalizer({"wpn": "weapon"}, expand=False, shorthand=resolver)
    assert off("condct wpn") == "condct wpn"
    assert norm.with_shorthand(None)("condct wpn") == "condct weapon"
