import csv
from pathlib import Path

import pytest

from service.errors import InvalidCode, UnknownCode
from service.taxonomy import TAXONOMY_VERSION, ancestor_at, level_of, load_taxonomy

ROOT = Path(__file__).resolve().parents[2]
SHARED_CSV = ROOT.parent / "shared" / "iccs" / "iccs_v1.csv"


@pytest.fixture(scope="module")
def tax():
    return load_taxonomy()


def test_counts_per_level(tax):
    assert len(tax) == 320
    assert [len(tax.codes(level=lv)) for lv in (1, 2, 3, 4)] == [11, 63, 148, 98]


def test_version(tax):
    assert tax.version == TAXONOMY_VERSION == "ICCS v1.0"


@pytest.mark.parametrize(
    ("code", "level", "parent"),
    [("02", 1, None), ("0201", 2, "02"), ("02011", 3, "0201"), ("020111", 4, "02011")],
)
def test_every_level(tax, code, level, parent):
    assert tax.level(code) == level
    assert tax.parent(code) == parent
    assert tax.path(code) == ["02", "0201", "02011", "020111"][:level]


def test_titles_and_children(tax):
    assert tax.title("0101") == "Intentional homicide"
    assert tax.children("0103") == ("01031", "01032")
    assert tax.is_leaf("0101") and not tax.is_leaf("01")
    assert "020111" in tax.descendants("02")


def test_variable_depth(tax):
    # A division without groups is a leaf at level 2; a group without classes at level 3.
    assert any(tax.is_leaf(c) for c in tax.codes(level=2))
    assert any(tax.is_leaf(c) for c in tax.codes(level=3))


@pytest.mark.parametrize("bad", ["101", "0101x", "", "1", "0201111", " 0201", "02.01"])
def test_malformed_codes(tax, bad):
    with pytest.raises(InvalidCode):
        tax.validate(bad)


@pytest.mark.parametrize("bad", [None, 101, 2.0, ["02"]])
def test_non_string_codes(tax, bad):
    with pytest.raises(InvalidCode):
        tax.validate(bad)


def test_unknown_but_well_formed(tax):
    with pytest.raises(UnknownCode):
        tax.validate("0199")
    assert "0101" in tax and "101" not in tax and None not in tax


def test_search(tax):
    hits = [c.code for c in tax.search("theft vehicle")]
    assert "05021" in hits
    assert [c.code for c in tax.search("0201")][0] == "0201"
    assert all(c.level == 2 for c in tax.search("theft", level=2))
    assert tax.search("   ") == []


def test_helpers():
    assert level_of("020111") == 4
    assert ancestor_at("020111", 2) == "0201"
    assert ancestor_at("0201", 4) == "0201"


@pytest.mark.skipif(not SHARED_CSV.exists(), reason="../shared/iccs not present")
def test_cross_check_against_shared_manual(tax):
    with SHARED_CSV.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(tax)
    for row in rows:
        cat = tax.get(row["code"])
        assert cat.title == row["label"]
        assert cat.level == int(row["level"])
        assert (cat.parent or "") == row["parent"]
