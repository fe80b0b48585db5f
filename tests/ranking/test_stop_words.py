"""The stop words interests are read without: scikit-learn's list, copied."""

from __future__ import annotations

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS as SCIKIT_LEARN

from digest.ranking.lexical import split_phrases, stems
from digest.ranking.stop_words import ENGLISH_STOP_WORDS


def test_the_copy_is_scikit_learns_list() -> None:
    assert ENGLISH_STOP_WORDS == SCIKIT_LEARN


def test_an_interest_keeps_its_technical_words_and_drops_the_glue() -> None:
    [phrase] = split_phrases("Transformers for 3D point clouds with RL")
    assert stems(phrase) == stems("transformers 3d point clouds rl")
