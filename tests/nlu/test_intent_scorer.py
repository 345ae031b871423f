"""The exported intent model scores like the sklearn pipeline it was trained as, without sklearn."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from naviyam.nlu.classifier import IntentClassifier
from naviyam.nlu.fast import FastNLU
from naviyam.nlu.features import cue_text, masked_text, morpheme_text
from naviyam.nlu.entities import tag_entities
from naviyam.nlu.intent_scorer import IntentScorer, char_wb_ngrams, word_ngrams

TEXTS = ["급식카드 되는 치킨집 추천해줘", "a b", " x  y\tz ", "", "   ", "ㅋ", "떡볶이",
         "SHOP 몇 시에 열어", "거기 말고 다른 데", "만원\n이하로   보여줘 ㅎㅎ", "abcd abcde"]


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("ngram_range", [(1, 4), (2, 3), (1, 1)])
def test_char_wb_ngrams_are_sklearns(text, ngram_range):
    analyzer = TfidfVectorizer(analyzer="char_wb", ngram_range=ngram_range, lowercase=False).build_analyzer()
    assert char_wb_ngrams(text, *ngram_range) == analyzer(text)


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("ngram_range", [(1, 2), (1, 1), (2, 3)])
def test_word_ngrams_are_sklearns(text, ngram_range):
    analyzer = TfidfVectorizer(analyzer="word", token_pattern=r"\S+", ngram_range=ngram_range,
                               lowercase=False).build_analyzer()
    assert word_ngrams(text, *ngram_range) == analyzer(text)


def _channels(rows, preprocessor):
    masked, morphs, cues = [], [], []
    for row in rows:
        pre = preprocessor(row["text"])
        tagged = tag_entities(pre, None)
        masked.append(masked_text(pre, tagged.spans))
        morphs.append(morpheme_text(pre, tagged.spans))
        cues.append(cue_text(pre, tagged.spans))
    return masked, morphs, cues


@pytest.fixture(scope="module")
def fitted(train_rows, preprocessor):
    rows = train_rows[:800]
    channels = _channels(rows, preprocessor)
    return IntentClassifier(seed=3).fit(channels, [r["intent"] for r in rows]), channels


def test_saved_scorer_matches_sklearn_on_unseen_messages(fitted, held_out_rows, preprocessor, tmp_path):
    classifier, channels = fitted
    classifier.export(channels).save(tmp_path)
    scorer = IntentScorer.load(tmp_path)
    unseen = _channels(held_out_rows[:300], preprocessor)
    expected = classifier.predict_proba(unseen)
    got = np.vstack([scorer.predict_proba(texts) for texts in zip(*unseen)])
    assert scorer.labels == classifier.labels
    np.testing.assert_allclose(got, expected, atol=1e-6, rtol=0)
    assert (got.argmax(1) == expected.argmax(1)).all()
    # A message with no known term scores as the intercepts alone, like sklearn's empty row.
    np.testing.assert_allclose(scorer.predict_proba(("#", "#", "#")), classifier.predict_proba((["#"], ["#"], ["#"]))[0],
                               atol=1e-9)


def test_export_refuses_a_vectorizer_it_cannot_reproduce(fitted):
    classifier, channels = fitted
    classifier.chars.set_params(lowercase=True)
    try:
        with pytest.raises(ValueError, match="cannot export a vectorizer"):
            classifier.export(channels)
    finally:
        classifier.chars.set_params(lowercase=False)


def test_export_refuses_a_scorer_that_disagrees_with_sklearn(fitted, monkeypatch):
    """The guard on every build: were the n-grams ever to drift from sklearn's, no model is saved."""
    classifier, channels = fitted
    from naviyam.nlu import intent_scorer

    monkeypatch.setattr(intent_scorer, "char_wb_ngrams", lambda text, low, high: text.split())
    with pytest.raises(ValueError, match="differs from sklearn"):
        classifier.export(channels)


def test_an_older_saved_format_is_rebuilt_not_misread(tmp_path):
    (tmp_path / "meta.json").write_text(json.dumps({"version": "fast-nlu-old", "backend": "fast"}))
    assert not FastNLU.is_saved(tmp_path)
    with pytest.raises(ValueError, match="rebuild it"):
        FastNLU.load(tmp_path)


def test_loading_and_scoring_import_neither_sklearn_nor_scipy(fitted, tmp_path):
    classifier, channels = fitted
    classifier.export(channels).save(tmp_path)
    code = ("import sys; from naviyam.nlu.intent_scorer import IntentScorer\n"
            f"s = IntentScorer.load({str(tmp_path)!r}); s.scores('치킨', '치킨', '')\n"
            "print([m for m in ('sklearn', 'scipy', 'joblib') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"
