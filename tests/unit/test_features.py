"""The head's features: n-grams without scikit-learn equal its TfidfVectorizer's."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from service.models.ngrams import CharNgrams
from service.models.predictor import FeatureBuilder

TRAIN = [
    "theft of a motor vehicle",
    "assault with a deadly weapon",
    "possession of controlled substance for sale",
    "burglary of a dwelling at night",
    "driving under the influence of alcohol",
    "aaaa aaaa aaaa",
]
QUERIES = [
    "theft from a motor vehicle",
    "",
    "zzzz qqqq",  # no known n-grams: an empty row
    "assault assault assault with intent",
    "été volé à la gare",  # characters outside the training vocabulary
    "  a   b\tc\n  DUI ",  # whitespace runs, one-letter words, capitals
    *TRAIN,
]


@pytest.mark.parametrize(
    "options",
    [
        {"sublinear_tf": True},
        {"sublinear_tf": False},
        {"binary": True},
        {"norm": "l1"},
        {"norm": None, "use_idf": False},
    ],
)
def test_fast_ngrams_equal_sklearn_transform(options: dict[str, object]) -> None:
    vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), dtype=np.float32, **options)
    vec.fit(TRAIN)
    ngrams = CharNgrams.from_vectorizer(vec)
    for text in QUERIES:
        assert ngrams.analyze(text) == vec.build_analyzer()(text)
    fast = ngrams.transform(QUERIES)
    ref = vec.transform(QUERIES)
    assert fast.shape == ref.shape and fast.dtype == ref.dtype
    np.testing.assert_allclose(fast.toarray(), ref.toarray(), rtol=1e-6, atol=1e-7)


def test_features_join_weighted_embeddings_and_projected_ngrams() -> None:
    vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 3), dtype=np.float32).fit(TRAIN)
    width = len(vec.vocabulary_)
    projection = np.random.default_rng(1).normal(size=(width, 4))
    emb = np.ones((2, 3), dtype=np.float32)
    out = FeatureBuilder(CharNgrams.from_vectorizer(vec), 2.0, projection).transform(
        QUERIES[:2], emb
    )
    assert out.shape == (2, 7)
    np.testing.assert_allclose(out[:, :3], 2.0)
    np.testing.assert_allclose(
        out[:, 3:], vec.transform(QUERIES[:2]) @ projection.astype(np.float32), rtol=1e-5
    )


def test_ngram_ranges_and_unsupported_vectorisers() -> None:
    for lo, hi in ((1, 1), (2, 5), (3, 6)):
        vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(lo, hi)).fit(TRAIN)
        ngrams = CharNgrams.from_vectorizer(vec)
        for text in QUERIES:
            assert ngrams.analyze(text) == vec.build_analyzer()(text)
    assert CharNgrams.from_vectorizer(vec).transform([]).shape == (0, len(vec.vocabulary_))
    with pytest.raises(ValueError, match="char_wb"):
        CharNgrams.from_vectorizer(TfidfVectorizer(analyzer="word").fit(TRAIN))
