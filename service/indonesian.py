"""Indonesian and Malay word forms: the prefixed forms of a root, for glossary roots.

Indonesian builds its offence words from roots: curi (steal) gives mencuri, dicuri, pencuri,
pencurian, kecurian; tipu (deceive) gives menipu, ditipu, penipuan. A glossary of fixed words
misses most of them, so a root table (``id_roots.csv``: ``root,gloss``) lists roots and every
prefixed form takes the root's gloss. Suffixes (-an, -kan, -i, -nya) need no forms of their
own: a Latin term matches at the start of a word and the word may go on.

The nasal prefixes meN- and peN- take the sound of the root's first letter and drop a first
p, t, k or s before a vowel (pukul: memukul; tipu: menipu; keroyok: mengeroyok; siksa:
menyiksa); writers keep it often enough (mengkeroyok, memperkosa) that both spellings are
listed. A form nobody writes costs a table entry and matches nothing.
"""

from __future__ import annotations

_VOWELS = frozenset("aeiou")
# Statute boilerplate, not offences: "diancam pidana penjara" (punishable by imprisonment),
# "terancam hukuman" (faces a sentence).
_BOILERPLATE = frozenset({"diancam", "terancam"})
# Prefixes that join a root unchanged. Not se- ("one"): sesuap is a mouthful, not a bribe.
_PLAIN = ("di", "ter", "ber", "ke", "per", "memper", "diper")


def _nasal(root: str) -> list[str]:
    """The stems meN- and peN- give ``root``, without the me-/pe- (so "ncuri" for curi)."""
    first = root[0]
    before_vowel = len(root) > 1 and root[1] in _VOWELS
    if first in _VOWELS:
        return ["ng" + root]
    if first in "bfv":
        return ["m" + root]
    if first == "p":
        return ["m" + root[1:], "m" + root] if before_vowel else ["m" + root]
    if first in "dcjz":
        return ["n" + root]
    if first == "t":
        return ["n" + root[1:], "n" + root] if before_vowel else ["n" + root]
    if first == "s":
        return ["ny" + root[1:], "n" + root] if before_vowel else ["n" + root]
    if first == "k":
        return ["ng" + root[1:], "ng" + root] if before_vowel else ["ng" + root]
    if first in "gh":
        return ["ng" + root]
    return [root]  # l, m, n, r, w, y: me- and pe- join it unchanged (merampok, perusak)


def affixed_forms(root: str) -> list[str]:
    """The prefixed forms of ``root``, each once (less statute boilerplate).

    Not the bare root: it is often an everyday word (pukul is "o'clock" as well as "hit"),
    where its prefixed forms (memukul, dipukul, pemukulan) name the act.
    """
    root = root.strip().lower()
    forms = ["me" + stem for stem in _nasal(root)]
    forms += ["pe" + stem for stem in _nasal(root)]
    forms += [prefix + root for prefix in _PLAIN]
    return [form for form in dict.fromkeys(forms) if form not in _BOILERPLATE]
