"""The ICCS tree spanned by a classifier's labels: which nodes each label counts towards.

Free of scikit-learn, so the service can load a head without it.
"""

from __future__ import annotations

import numpy as np

_PREFIX_LENGTHS = (2, 4, 5, 6)


def is_iccs_like(label: object) -> bool:
    """True for strings shaped like ICCS codes (their ancestors are their prefixes)."""
    return isinstance(label, str) and label.isdigit() and len(label) in _PREFIX_LENGTHS


def ancestors_and_self(code: str) -> list[str]:
    """``'020111'`` -> ``['02', '0201', '02011', '020111']``."""
    return [code[:n] for n in _PREFIX_LENGTHS if n <= len(code)]


def node_aggregation(classes: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Nodes of the tree spanned by ``classes`` and the 0/1 matrix classes x nodes.

    Non-ICCS labels (``not_an_offence``) stay nodes of their own, outside the tree.
    """
    nodes: list[str] = []
    index: dict[str, int] = {}
    pairs: list[tuple[int, int]] = []
    for ci, label in enumerate(classes):
        names = ancestors_and_self(str(label)) if is_iccs_like(label) else [str(label)]
        for name in names:
            if name not in index:
                index[name] = len(nodes)
                nodes.append(name)
            pairs.append((ci, index[name]))
    matrix = np.zeros((len(classes), len(nodes)), dtype=np.float64)
    for ci, ni in pairs:
        matrix[ci, ni] = 1.0
    return nodes, matrix
