"""Formula injection: cells a spreadsheet could run are written so that it cannot.

A written cell that starts with ``=``, ``+``, ``-``, ``@``, TAB or CR can run as a formula or
DDE command when the file is opened in a spreadsheet (OWASP, "CSV Injection"). CSV cells get a
leading apostrophe; XLSX cells keep their text and are stored as strings with Excel's quote
prefix (:func:`service.bulk.writers.xlsx_value`). No pyarrow here: the review export uses it.
"""

from __future__ import annotations

import re

# Cells a spreadsheet may run as a formula or DDE command (OWASP, "CSV Injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# A signed number is read as a number, never a formula: "-12.5", "+44", "-1,234.5", "1e-3".
_NUMBER = re.compile(r"[+-]?(?:\d[\d,]*(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def needs_neutralising(value: str) -> bool:
    """True for a cell a spreadsheet could run: it starts with = + - @ TAB or CR.

    A lone ``-`` (a common "no value" mark) and a plain signed number are left alone: a
    spreadsheet reads them as text or a number, never as a formula.
    """
    return (
        value[:1] in FORMULA_START
        and value != "-"
        and (value[0] not in "+-" or _NUMBER.fullmatch(value) is None)
    )


def neutralise(value: str) -> str:
    """A cell made inert the OWASP way: a leading apostrophe where it could run as a formula."""
    return "'" + value if needs_neutralising(value) else value
