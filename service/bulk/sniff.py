"""Encoding and delimiter detection for delimited text files.

Legacy exports come as UTF-8, UTF-8 with a BOM, UTF-16 or Windows-1252/Latin-1, with a comma,
semicolon, TAB or pipe between fields; a user rarely knows which, so both are sniffed.
"""

from __future__ import annotations

import codecs
import csv

from service.errors import FileFormatError

DELIMITERS = (",", ";", "\t", "|")
# How much of a CSV file encoding detection and delimiter sniffing look at.
ENCODING_SAMPLE_BYTES = 4 * 1024 * 1024
SNIFF_SAMPLE_CHARS = 64 * 1024


def detect_encoding(head: bytes) -> str:
    """Encoding of a CSV file from its first bytes: UTF-8 (with or without BOM) or Latin-1.

    A file is UTF-8 when its non-ASCII bytes are mostly valid UTF-8 sequences: a UTF-8 export
    with a few Latin-1 rows appended (mixed encodings) stays UTF-8 and those rows are rejected
    as undecodable, rather than every accented letter in the file turning into mojibake.
    Western legacy exports that are not UTF-8 are Windows-1252 (a superset of Latin-1's
    printable characters); bytes it does not define fall back to plain Latin-1.
    """
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if head.isascii():
        return "utf-8"
    # The sample may end inside a multi-byte character; an incremental decoder waits for it.
    decoded = codecs.getincrementaldecoder("utf-8")("replace").decode(head, final=False)
    bad = decoded.count("\ufffd")
    good = sum(1 for ch in decoded if ord(ch) > 127) - bad
    if bad == 0 or good > bad:
        return "utf-8"
    try:
        head.decode("cp1252")
    except UnicodeDecodeError:
        return "latin-1"
    return "cp1252"


def check_encoding(name: str) -> str:
    """The codec name; :class:`FileFormatError` for one Python does not know, or for a codec
    that does not turn bytes into text (``base64``, ``rot13``, ``zlib_codec``), which would
    otherwise fail only when the file is opened.
    """
    try:
        codec = codecs.lookup(name).name
        b"x".decode(codec, "ignore")  # a non-text codec refuses here (empty input would not)
    except (LookupError, ValueError) as exc:  # ValueError: a NUL in the name
        message = (
            f"Encoding '{name}' is not a text encoding; use e.g. utf-8, cp1252 or latin-1."
            if "text encoding" in str(exc)
            else f"Unknown encoding '{name}'."
        )
        raise FileFormatError(message, encoding=name) from exc
    return codec


def sniff_delimiter(sample: str, preferred: str = ",") -> str:
    """The delimiter among , ; TAB | that splits the sample's lines most consistently.

    ``csv.Sniffer`` guesses from character frequencies and is easily fooled by punctuation in
    offence texts ("Theft; by night"); parsing the first lines with each candidate and keeping
    the one that gives the header's field count on most lines is sturdier.
    """
    lines = sample.splitlines()[:200]
    if len(lines) > 1:
        lines = lines[:-1]  # the last line of a sample may be cut short
    best, best_score = preferred, (0.0, 1)
    for delim in DELIMITERS:
        try:
            records = [r for r in csv.reader(lines, delimiter=delim) if r]
        except csv.Error:
            continue
        if not records or len(records[0]) < 2:
            continue
        width = len(records[0])
        consistency = sum(1 for r in records if len(r) == width) / len(records)
        score = (round(consistency, 2), width)
        if score > best_score or (score == best_score and delim == preferred):
            best, best_score = delim, score
    return best
