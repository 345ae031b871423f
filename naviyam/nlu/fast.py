"""Step 4, default backend: trained intent classifier + rule-based entity tagger.

    nlu = FastNLU.train(rows, seed=7)        # rows: {"text", "intent", "entities"} (nlu_corpus)
    nlu.save(models_dir / "nlu"); nlu = FastNLU.load(models_dir / "nlu")
    result = nlu.parse(preprocessor("급식카드 되는 치킨집 추천해줘"), shop_names)
    # FOOD_RECOMMENDATION, food_category=치킨, payment_method=meal_card, query "급식카드 치킨"

parse() reuses the Preprocessor's morphemes and takes well under 5 ms.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections import Counter
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from naviyam.artifacts import read_meta
from naviyam.nlu.decision import decide
from naviyam.nlu.entities import Tagged, tag_entities
from naviyam.nlu.features import cue_text, masked_text, morpheme_text
from naviyam.nlu.filters import semantic_query, to_filters
from naviyam.nlu.followup import detect_followup
from naviyam.nlu.frame import frame_update, intent_of
from naviyam.nlu.intent_scorer import IntentScorer
from naviyam.nlu.shops import ShopHit, ShopMatcher
from naviyam.nlu.unsafe import unsafe_terms
from naviyam.schemas import Intent, NLUResult, Preprocessed

log = logging.getLogger(__name__)

META_FILE = "meta.json"
# 2: the intent model is saved as arrays for IntentScorer (1 was a pickled sklearn pipeline).
FORMAT_VERSION = 2
# Intents for which a loosely spelled shop name ("맛있는 치킨") is read as the shop.
SHOP_INTENTS = frozenset({Intent.SHOP_INFO, Intent.MENU_INQUIRY})


class FastNLU:
    backend = "fast"

    def __init__(self, intent: IntentScorer, version: str, metrics: dict | None = None):
        self.intent = intent
        self.version = version
        self.metrics: dict = dict(metrics or {})
        # One shop index per distinct name list; the chatbot passes the same catalog list every turn.
        self._shops: tuple[tuple[str, ...], ShopMatcher] | None = None

    # -- training and persistence --------------------------------------------------------
    @classmethod
    def train(cls, train_rows: list[dict], seed: int, preprocess=None) -> "FastNLU":
        """Fit the intent classifier on labelled rows (see ``naviyam.data.nlu_corpus``)."""
        from naviyam.preprocess import Preprocessor
        # sklearn is training-only; serving reads the exported scorer without importing it.
        from naviyam.nlu.classifier import IntentClassifier

        start = time.perf_counter()
        preprocess = preprocess or Preprocessor()
        # Shop names the rows mention play the catalog's part, as at inference time.
        matcher = ShopMatcher(sorted({r["entities"].get("shop_name") for r in train_rows} - {None}))
        masked, morphs, cues, labels = [], [], [], []
        for row in train_rows:
            pre = preprocess(row["text"])
            shop = matcher.find(pre.cleaned_text, fuzzy=False) if row["entities"].get("shop_name") else None
            tagged = tag_entities(pre, shop)
            masked.append(masked_text(pre, tagged.spans))
            morphs.append(morpheme_text(pre, tagged.spans))
            cues.append(cue_text(pre, tagged.spans))
            labels.append(row["intent"])
        channels = (masked, morphs, cues)
        classifier = IntentClassifier(seed=seed).fit(channels, labels)
        train_probs = classifier.predict_proba(channels)
        train_accuracy = float((train_probs.argmax(1) == [classifier.labels.index(y) for y in labels]).mean())
        intent = classifier.export(channels, expected=train_probs)
        seconds = time.perf_counter() - start
        metrics = {
            "n_train": len(train_rows),
            "seed": seed,
            "train_intent_accuracy": round(train_accuracy, 4),
            "train_seconds": round(seconds, 2),
            "intents": dict(Counter(labels)),
        }
        log.info("fast NLU trained on %d rows in %.1fs (train accuracy %.3f)", len(train_rows), seconds, train_accuracy)
        return cls(intent, _version(train_rows, seed), metrics)

    def save(self, path: Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.intent.save(path)
        # meta.json last: its presence marks a complete artefact (see naviyam.build).
        meta = {"version": self.version, "backend": self.backend, "format": FORMAT_VERSION, **self.metrics}
        (path / META_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> "FastNLU":
        path = Path(path)
        meta = _read_meta(path)
        metrics = {k: v for k, v in meta.items() if k not in ("version", "backend", "format")}
        return cls(IntentScorer.load(path), meta["version"], metrics)

    @staticmethod
    def is_saved(path: Path) -> bool:
        """A complete artefact of the current format is at ``path`` (an older one is rebuilt)."""
        try:
            _read_meta(path)
        except (FileNotFoundError, ValueError):
            return False
        return True

    # -- inference ------------------------------------------------------------------------
    def parse(self, pre: Preprocessed, known_shop_names: Sequence[str] = ()) -> NLUResult:
        text = pre.cleaned_text
        matcher = self._matcher(known_shop_names)
        shop = _named_shop(matcher, text, fuzzy=False)
        tagged, scores = self._read(pre, shop if shop is None or shop.exact else None)
        top = Intent(_best(scores))
        if shop is not None and not shop.exact:
            # A loosely spelled name ("맛있는 치킨") may be the shop or just words: "맛있는 치킨
            # 몇 시에 열어?" asks about the shop, "맛있는 치킨 추천해줘" does not. Keep the shop
            # reading when it is about a shop and more convincing than the plain reading.
            as_shop = self._read(pre, shop)
            shop_top = _best(as_shop[1])
            if Intent(shop_top) in SHOP_INTENTS and as_shop[1][shop_top] >= scores[top.value]:
                tagged, scores = as_shop
        elif shop is None and matcher is not None and top in SHOP_INTENTS:
            typo = _named_shop(matcher, text, fuzzy=True)   # "맛잇는치킨하우스 어디야"
            if typo is not None:
                tagged, scores = self._read(pre, typo)

        followup = detect_followup(text)
        decision = decide(scores, tagged.entities, followup, bool(unsafe_terms(pre)), text)
        entities = tagged.entities
        frame = frame_update(decision.intent, entities, followup, text)
        return NLUResult(
            intent=decision.intent if decision.intent is Intent.UNSAFE_REQUEST else intent_of(frame, decision.intent, text=text),
            entities=entities,
            confidence=round(decision.confidence, 4),
            filters=to_filters(entities),
            semantic_query=semantic_query(entities, pre.keywords),
            followup=followup,
            frame=frame,
            backend=self.backend,
            intent_scores={k: round(v, 4) for k, v in sorted(scores.items(), key=lambda kv: -kv[1])},
        )

    def _read(self, pre: Preprocessed, shop: ShopHit | None) -> tuple[Tagged, dict[str, float]]:
        tagged = tag_entities(pre, shop)
        scores = self.intent.scores(masked_text(pre, tagged.spans), morpheme_text(pre, tagged.spans),
                                    cue_text(pre, tagged.spans))
        return tagged, scores

    def _matcher(self, names: Sequence[str]) -> ShopMatcher | None:
        if not names:
            return None
        cached = self._shops
        if cached is not None and cached[0] is names:   # the bundle's ShopNames: immutable, same object
            return cached[1]
        key = tuple(names)   # a copy, so a list changed in place is noticed
        if cached is not None and cached[0] == key:
            return cached[1]
        matcher = ShopMatcher(key)
        self._shops = (names if isinstance(names, tuple) else key, matcher)
        return matcher


# Shop names made of a place a child would name and a food ("학교앞분식", "우리동네피자"): without
# their branch ("… 이매점"), the same words are a description of what the child wants.
_DESCRIPTIVE_NAME = re.compile(r"^(?:학교|학원|우리|동네|집|교문|정문|후문)(?:앞|옆|근처|동네)?")


def _named_shop(matcher: ShopMatcher | None, text: str, fuzzy: bool) -> ShopHit | None:
    hit = matcher.find(text, fuzzy=fuzzy) if matcher is not None else None
    if hit is not None and " " not in hit.name and _DESCRIPTIVE_NAME.match(text[hit.start:hit.end].replace(" ", "")):
        return None   # "학교 앞 분식" describes where and what; it is not the shop 학교앞분식
    return hit


def _read_meta(path: Path) -> dict:
    return read_meta(path, what="fast NLU model", format_version=FORMAT_VERSION, meta_file=META_FILE)


def _best(scores: dict[str, float]) -> str:
    return max(scores, key=lambda label: scores[label])


def _version(rows: list[dict], seed: int) -> str:
    digest = hashlib.sha256(str(seed).encode())
    for row in rows:
        digest.update(row["text"].encode("utf-8"))
        digest.update(row["intent"].encode())
    return f"fast-nlu-{date.today():%Y%m%d}-{digest.hexdigest()[:8]}"
