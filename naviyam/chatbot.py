"""Steps 1-2 and 8, and the in-process composition of all 8 steps.

Each step is a method that takes the turn's ``Envelope`` and fills its own fields. The CLI and
tests call ``process()``; the served graph calls the same methods, one node each, so both give
the same answer for the same input. A failing optional step (retrieval, candidates, ranker) is
recorded in ``envelope.errors`` and the answer is built from what is left (``degraded``).
"""
from __future__ import annotations

import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timedelta

import numpy as np

from naviyam.clock import Clock, receive, to_local
from naviyam.data.catalog import haversine_km, walk_minutes
from naviyam.dialogue import policy, select
from naviyam.dialogue.acts import Act, FrameUpdate
from naviyam.dialogue.profile import profile_for
from naviyam.dialogue.references import resolve as resolve_reference
from naviyam.dialogue.state import DialogueState
from naviyam.filtering import allowed_menus, shop_mask
from naviyam.memory import ConversationMemory, ShownShop
from naviyam.metrics import ChatMetrics
from naviyam.models import ModelBundle
from naviyam.nlg.grounding import check_grounding
from naviyam.nlg.normalizer import normalise_for_children
from naviyam.nlg.templates import UNSAFE_OUTPUT_ANSWER, AnswerInput, allowed_amounts, compose_answer, stated_words
from naviyam.nlu.frame import frame_update, intent_of
from naviyam.safety import SafetyVerdict, check_answer, check_request, screen_recommendations, stated_allergies
from naviyam.schemas import (
    ChatbotResponse, Envelope, Intent, Recommendation, ResponseMetadata, SearchFilters, TrafficKind, UserInput,
)
from naviyam.events import EventStore
from naviyam.storage import events_target, memory_target

log = logging.getLogger(__name__)

RANKER_WEIGHT = 0.8  # personalised score vs. query relevance in the final order
NEAR_FILL_RELEVANCE = 0.05  # a qualifying nearby shop no step returned: last among equals
OVER_ALLOWANCE_PENALTY = 0.7  # a shop whose cheapest meal exceeds the child's allowance is no top pick


@contextmanager
def timed_step(env: Envelope, step: str):
    start = time.perf_counter()
    try:
        yield
    finally:
        env.timings_ms[step] = round((time.perf_counter() - start) * 1000, 2)


def record_failure(env: Envelope, step: str, exc: BaseException, metrics: ChatMetrics | None = None) -> None:
    log.warning("step %s failed: %s", step, exc, exc_info=log.isEnabledFor(logging.DEBUG))
    env.errors[step] = f"{type(exc).__name__}: {exc}"[:300]
    env.degraded = True
    if metrics:
        metrics.errors.labels(step=step).inc()


class NaviyamChatbot:
    def __init__(self, models: ModelBundle, memory: ConversationMemory | None = None,
                 events: EventStore | None = None, metrics: ChatMetrics | None = None, clock: Clock | None = None):
        self.models = models
        self.settings = models.settings
        models.catalog  # fail fast (DataNotBuiltError) before any turn when the data set is missing
        self.memory = memory or ConversationMemory(memory_target(self.settings))
        self.events = events or EventStore(events_target(self.settings))
        self.metrics = metrics or ChatMetrics()
        # Replaceable: the dialogue evaluation replays each conversation at its recorded time.
        self.clock = clock or Clock.from_settings(self.settings)
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="naviyam-step5")

    # -- steps 1-2: input ---------------------------------------------------------------
    def start(self, user_input: UserInput, traffic: TrafficKind = "live") -> Envelope:
        """Step 1: the turn as received, stamped with the server's time (the event time) and the
        local time it is about (the device's clock only within the allowed skew)."""
        skew = timedelta(hours=self.settings.clock.max_client_skew_hours)
        receipt = receive(user_input.timestamp, self.clock.now(), skew)
        if receipt.client_clock == "skewed":
            self.metrics.client_clock_skewed.inc()
        return Envelope(request_id=uuid.uuid4().hex, input=user_input, received_at=receipt.received_at,
                        local_time=receipt.local_time, client_clock=receipt.client_clock, traffic=traffic)

    # -- steps 3-4: preprocessing, NLU, safety, dialogue state ----------------------------
    def understand(self, env: Envelope) -> Envelope:
        catalog = self.models.catalog
        with timed_step(env, "preprocess"):
            env.preprocessed = self.models.preprocessor(env.input.text)
        with timed_step(env, "nlu"):
            nlu = self.models.nlu.parse(env.preprocessed, self.models.shop_names)
            verdict = check_request(env.preprocessed)
            env.unsafe_terms, env.unsafe_kinds = list(verdict.terms), list(verdict.kinds)
            env.profile = profile_for(catalog, env.input)
            previous = self.memory.last_turn(self._conversation(env))
            state = previous.state if previous is not None and previous.state is not None else DialogueState()
            update = nlu.frame or frame_update(nlu.intent, nlu.entities, nlu.followup, env.preprocessed.cleaned_text)
            update = policy.settle(update, state, nlu.intent, unsafe=verdict.unsafe or nlu.intent is Intent.UNSAFE_REQUEST,
                                   stated_allergens=stated_allergies(env.preprocessed.cleaned_text))
            state = policy.apply(state, update)
            found = policy.search(state, update, env.profile, env.input, catalog,
                                  self.settings.candidates.max_distance_km, local=self._local_time(env))
            env.filters, env.context, env.dialogue, env.update = found.filters, found.context, state, update
            if update.act is Act.ASK_SHOP:
                origin = (env.context.origin_lat, env.context.origin_lon)
                env.focus_shop = resolve_reference(update.reference, state, env.input.text,
                                                   lambda sid: catalog.shops.at[sid, "name"],
                                                   lambda name: self._shops_named(name, origin))
            env.nlu = self._resolved(nlu, update, state, env.filters, env.preprocessed.cleaned_text)
        env.model_versions["nlu"] = self.models.nlu.version
        env.needs_search = self.needs_search(env) and not env.unsafe_terms
        return env

    def _local_time(self, env: Envelope) -> datetime:
        if env.local_time is None:  # an envelope made without start(): the server's own clock
            env.received_at = env.received_at or self.clock.now()
            env.local_time = to_local(env.received_at)
        return env.local_time

    @staticmethod
    def _resolved(nlu, update: FrameUpdate, state: DialogueState, filters: SearchFilters, text: str):
        """The NLU result as the conversation reads it: the intent of the act, the frame's entities."""
        act = update.act
        intent = intent_of(update, nlu.intent, shops_on_screen=bool(state.shown), text=text)
        entities = nlu.entities.model_copy(update={
            "food_category": state.category, "menu_item": state.menu_items[-1] if state.menu_items else None,
            "budget": state.per_person_budget if act is not Act.SAFETY else nlu.entities.budget,
        })
        return nlu.model_copy(update={"intent": intent, "entities": entities, "filters": filters})

    def needs_search(self, env: Envelope) -> bool:
        update = env.update
        if update is None or env.nlu is None or update.unknown_place:
            return False
        if update.act in (Act.NEW_SEARCH, Act.REFINE):
            if env.nlu.intent is Intent.BUDGET_INQUIRY:   # "잔액 얼마야" searches nothing; "만원으로 뭐 먹지" does
                state = env.dialogue
                return state.budget is not None or state.category is not None or bool(state.menu_items)
            return True
        # A statement ("우유 알레르기 있어") applies to the search already on screen, at once.
        return update.act is Act.STATEMENT and env.dialogue is not None and env.dialogue.searched

    # -- step 5A: retrieval ---------------------------------------------------------------
    def retrieve(self, env: Envelope) -> Envelope:
        with timed_step(env, "retrieval"):
            try:
                query = env.nlu.semantic_query or env.preprocessed.cleaned_text
                env.retrieval = self.models.retriever.search(
                    query, env.filters, origin=(env.context.origin_lat, env.context.origin_lon)
                )
                env.model_versions["retriever"] = self.models.retriever.version
            except Exception as exc:  # noqa: BLE001 - any failure degrades, never crashes the turn
                record_failure(env, "retrieval", exc, self.metrics)
        return env

    # -- step 5B: 4-funnel candidates ------------------------------------------------------
    def generate_candidates(self, env: Envelope) -> Envelope:
        with timed_step(env, "candidates"):
            try:
                result = self.models.candidates.generate(env.profile, env.filters, env.context)
                env.candidates = result.candidates
                for funnel, error in result.funnel_errors.items():
                    env.errors[f"candidates.{funnel}"] = error
                env.model_versions["candidates"] = self.models.candidates.version
            except Exception as exc:  # noqa: BLE001
                record_failure(env, "candidates", exc, self.metrics)
        return env

    def retrieve_and_generate(self, env: Envelope) -> Envelope:
        """5A and 5B run side by side; each writes only its own envelope fields."""
        futures = [self._pool.submit(self.retrieve, env), self._pool.submit(self.generate_candidates, env)]
        for fut in futures:
            fut.result()
        return env

    # -- step 6: personalised ranking ------------------------------------------------------
    # One rule, two callers: ``rank`` scores in-process (OnnxRanker), the served ranker
    # transformer scores through its predictor (async); both go through ``ranking_pool`` and
    # ``finish_ranking`` inside ``timed_step(env, "ranking")``, so step 6 reads the same either way.
    def rank(self, env: Envelope) -> Envelope:
        with timed_step(env, "ranking"):
            pool = self.ranking_pool(env)
            scores = version = error = None
            if pool:
                ranker = self.models.ranker  # one version for the whole turn, whatever a reload does
                try:
                    scores, version = ranker.score(env.profile, list(pool), env.context), ranker.version
                except Exception as exc:  # noqa: BLE001 - rank from relevance instead
                    error = exc
            self.finish_ranking(env, pool, scores, version=version, error=error)
        return env

    def ranking_pool(self, env: Envelope) -> dict[str, float]:
        """Step 6's input: the candidate pool to score (empty: nothing to score, order as is)."""
        return self.candidate_pool(env)

    def finish_ranking(self, env: Envelope, pool: dict[str, float], scores=None, *, version: str | None = None,
                       error: BaseException | None = None) -> Envelope:
        """Step 6's end: a scoring failure is recorded (the turn degrades to query relevance),
        a score's model version is kept, and the pool is put in its final order."""
        if error is not None:
            record_failure(env, "ranking", error, self.metrics)
            scores = None
        elif scores is not None and version is not None:
            env.model_versions["ranking"] = version
        return self.order(env, pool, scores)

    def order(self, env: Envelope, pool: dict[str, float], scores=None) -> Envelope:
        """Final order from personalised scores (aligned with ``pool``; None when the ranker failed)."""
        personal = scores is not None and len(pool) > 0
        method = (["wide_deep"] if personal else []) + (["rag"] if env.retrieval else []) + (
            ["4-funnel"] if env.candidates else [])
        env.recommendation_method = " + ".join(method) or "none"
        final = dict(zip(pool, self._final_scores(env, pool, scores if personal else None).tolist()))
        picked = select.pick(self.models.catalog, final, env.filters, env.context, self.settings.ranking.top_k)
        env.relaxed_distance = picked.widened
        env.recommendations = [self._recommendation(env, i + 1, sid, final[sid], open_now=sid not in picked.closed)
                               for i, sid in enumerate(picked.shop_ids)]
        return env

    def candidate_pool(self, env: Envelope) -> dict[str, float]:
        """shop_id -> query relevance in [0,1], restricted (again) to shops that pass every filter."""
        pool: dict[str, float] = {}
        for hit in env.retrieval or []:
            pool[hit.shop_id] = max(pool.get(hit.shop_id, 0.0), hit.rag_score)
        for cand in env.candidates or []:
            pool.setdefault(cand.shop_id, 0.5 * cand.base_score)
        # Safety net: whatever a step returned, only shops meeting the hard filters go on.
        catalog = self.models.catalog
        mask = shop_mask(catalog, env.filters, (env.context.origin_lat, env.context.origin_lon))
        pool = {sid: rel for sid, rel in pool.items() if mask[catalog.row_of(sid)]}
        # Funnels rank by their own signals; qualifying shops within a child's walk that none of
        # them returned still compete (a narrow frame - menu, allergy, time - leaves few).
        near = select.near_qualifying(catalog, mask, env.context, env.filters)
        for sid in near:
            pool.setdefault(sid, NEAR_FILL_RELEVANCE)
        return pool

    def _shops_named(self, name: str, origin: tuple[float, float]) -> list[str]:
        """Shops of the catalogue called ``name``, nearest first (a chain has branches everywhere)."""
        shops = self.models.catalog.shops
        exact = shops[shops["name"] == name]
        hits = exact if len(exact) else shops[shops["name"].str.contains(name, regex=False)]
        if not len(hits):
            return []
        dist = haversine_km(origin[0], origin[1], hits["lat"].to_numpy(), hits["lon"].to_numpy())
        return list(hits["shop_id"].to_numpy()[dist.argsort()][:3])

    def _final_scores(self, env: Envelope, pool: dict[str, float], personal=None) -> np.ndarray:
        """Final score per pool shop (pool order): the personal score blended with query relevance,
        and a shop whose cheapest meal exceeds a meal-card child's allowance pushed down."""
        relevance = np.fromiter(pool.values(), dtype=np.float64, count=len(pool))
        score = relevance if personal is None else (
            RANKER_WEIGHT * np.asarray(personal, dtype=np.float64) + (1 - RANKER_WEIGHT) * relevance)
        if env.profile.has_meal_card and len(pool):
            catalog = self.models.catalog
            rows = np.fromiter((catalog.row_of(sid) for sid in pool), dtype=np.int64, count=len(pool))
            min_price = catalog.shops["min_price"].to_numpy()[rows].astype(np.int64)
            score = np.where(min_price > env.profile.per_meal_allowance, score * OVER_ALLOWANCE_PENALTY, score)
        return score

    def _recommendation(self, env: Envelope, rank: int, shop_id: str, score: float, open_now: bool = True,
                        n_menus: int | None = None) -> Recommendation:
        shop = self.models.catalog.shop(shop_id)
        dist_km = float(haversine_km(env.context.origin_lat, env.context.origin_lon, shop.lat, shop.lon))
        menus = allowed_menus(self.models.catalog, shop_id, env.filters)
        allowance = env.profile.per_meal_allowance
        wanted = env.filters.menu_item
        # Show what the child asked for, then what fits their allowance, then the signatures.
        menus.sort(key=lambda m: (not (wanted and wanted in m.name), m.price > allowance, not m.is_signature, m.price))
        if n_menus is None:
            n_menus = 4 if env.nlu.intent in (Intent.MENU_INQUIRY, Intent.SHOP_INFO) else 2
        funnel_scores = next((c.scores for c in env.candidates or [] if c.shop_id == shop_id), {})
        return Recommendation(
            rank=rank, shop_id=shop_id, name=shop.name, category=shop.category, address=shop.address,
            distance_m=int(dist_km * 1000), walk_minutes=walk_minutes(dist_km), menus=menus[:n_menus],
            min_price=shop.min_price, accepts_meal_card=shop.accepts_meal_card,
            is_good_influence_shop=shop.is_good_influence_shop, opening_hours=shop.opening_hours,
            phone=shop.phone[:32], open_now=open_now, rating=shop.rating, personalized_score=round(score, 4), funnel_scores=funnel_scores,
        )

    # -- step 7: NLG -----------------------------------------------------------------------
    def answer(self, env: Envelope) -> Envelope:
        with timed_step(env, "nlg"):
            verdict = SafetyVerdict(unsafe=bool(env.unsafe_terms), kinds=tuple(env.unsafe_kinds),
                                    terms=tuple(env.unsafe_terms))
            if verdict.unsafe:
                env.recommendations = []
            elif env.update is not None and env.update.act is Act.ASK_SHOP:
                env.recommendations = self.shown_again(env)
            if not verdict.unsafe:
                # Output check 1: whatever retrieval and ranking returned, no unsafe shop or menu goes out.
                env.recommendations, dropped = screen_recommendations(env.recommendations)
                if dropped:
                    log.error("unsafe recommendations dropped: %s", dropped)
                    env.errors["safety.output"] = "; ".join(dropped)[:300]
            inp = AnswerInput(nlu=env.nlu, recommendations=env.recommendations, profile=env.profile,
                              safety=verdict, relaxed_distance=env.relaxed_distance, update=env.update,
                              state=env.dialogue, focus_shop=env.focus_shop,
                              at=env.filters.open_at or env.filters.prefer_open_at if env.filters else None)
            category = env.nlu.entities.food_category
            text, nlg_version = None, "template-v1"
            answerer = self.models.answerer
            if answerer is not None and not verdict.unsafe:
                try:
                    text, used_llm, violations = answerer.answer(inp, env.input.text)  # already normalised
                    if used_llm:
                        nlg_version = answerer.version
                    elif violations:
                        env.errors["nlg.llm"] = "; ".join(violations)[:300]  # the template went out instead
                except Exception as exc:  # noqa: BLE001 - the template answer is always there
                    env.errors["nlg.llm"] = f"{type(exc).__name__}: {exc}"[:300]
                    text = None
            if text is None:
                # No food emoji on a refusal, a help answer or small talk ("고마워" -> no 🍗).
                plain = verdict.unsafe or env.nlu.intent is Intent.UNSAFE_REQUEST or (
                    env.update is not None and env.update.act is Act.CHITCHAT)
                text = normalise_for_children(compose_answer(inp), None if plain else category)
            if not verdict.unsafe and (out := check_answer(text)).unsafe:
                # Output check 2: the final text, from the template or the LLM, said something unsafe.
                log.error("unsafe answer withheld: %s", out.terms)
                env.errors["safety.output"] = "unsafe answer: " + ",".join(out.terms)
                env.recommendations = []
                text = UNSAFE_OUTPUT_ANSWER
            elif not verdict.unsafe:
                report = check_grounding(text, env.recommendations, self.models.shop_names, allowed_amounts(inp),
                                         stated_words(inp))
                if not report.ok:
                    # Both paths are checked before this; reaching here is a bug worth shouting about.
                    log.error("ungrounded answer: %s", report.violations)
                    env.recommendations = []
                    text = "미안해요, 지금은 정확한 가게 정보를 알려 줄 수 없어요. 잠시 후 다시 물어봐 줄래요? 🙏"
            env.answer = text
            env.model_versions["nlg"] = nlg_version
        return env

    def shown_again(self, env: Envelope) -> list[Recommendation]:
        """The list on screen, rebuilt from the data; the shop asked about shows its whole menu."""
        state, catalog = env.dialogue, self.models.catalog
        ids = [sid for sid in (state.shown if state else []) if sid in catalog.shops.index]
        focus = env.focus_shop
        if focus is not None and focus not in ids:
            ids = [focus]   # a shop the child named that was not on screen
        at = env.filters.open_at or env.filters.prefer_open_at
        return [self._recommendation(env, i + 1, sid, 0.0, open_now=select.is_open_at(catalog, sid, at),
                                     n_menus=8 if sid == focus else 2) for i, sid in enumerate(ids)]

    # -- step 8: response, memory, log, metrics ---------------------------------------------
    def finish(self, env: Envelope) -> ChatbotResponse:
        started = time.perf_counter()
        elapsed = time.time() - env.started_at
        nlu = env.nlu
        response = ChatbotResponse(
            response=env.answer or "",
            recommendations=env.recommendations,
            confidence=round(nlu.confidence, 4),
            response_time=round(elapsed, 4),
            metadata=ResponseMetadata(
                intent=nlu.intent, entities=nlu.entities,
                filters_applied=env.filters.describe() if env.filters else [],
                recommendation_method=env.recommendation_method, model_versions=env.model_versions,
                timings_ms=env.timings_ms, degraded=env.degraded, nlu_backend=nlu.backend,
                request_id=env.request_id, session_id=env.input.session_id,
                dialogue_state=env.dialogue.goal() if env.dialogue is not None else None,
            ),
        )
        self._remember(env, response)
        # Step 8's own time (memory + log) is only known now; the response carries it too.
        response.metadata.timings_ms["response"] = round((time.perf_counter() - started) * 1000, 2)
        return response

    def _remember(self, env: Envelope, response: ChatbotResponse) -> None:
        nlu = env.nlu
        # The event time is the server's; the device's clock is kept beside it, never instead.
        now = (env.received_at or self.clock.now()).isoformat()
        client_time = env.input.timestamp.isoformat() if env.input.timestamp else None
        shown = [ShownShop(r.shop_id, r.min_price, r.distance_m) for r in env.recommendations]
        try:
            state = None
            if env.dialogue is not None and env.update is not None:
                ids = [r.shop_id for r in env.recommendations]
                state = policy.after_answer(env.dialogue, env.update, ids, env.focus_shop)
            self.memory.add_turn(self._conversation(env), env.input.user_id, now, env.input.text,
                                 response.response, nlu.intent.value, env.filters or SearchFilters(), shown,
                                 request_id=env.request_id, state=state)
        except Exception as exc:  # noqa: BLE001 - memory is best effort; the answer still goes out
            record_failure(env, "memory", exc, self.metrics)
        try:
            self.events.log_interaction(env.request_id, env.input.user_id, now, {
                "request_id": env.request_id, "user_id": env.input.user_id, "session_id": env.input.session_id,
                "timestamp": now, "received_at": now, "client_time": client_time,
                "local_time": env.local_time.isoformat() if env.local_time else None,
                "client_clock": env.client_clock, "traffic": env.traffic, "user_input": env.input.text,
                "extracted_info": {"intent": nlu.intent.value, "entities": nlu.entities.model_dump(mode="json"),
                                   "confidence": nlu.confidence},
                "shown_recommendations": [
                    {"shop_id": r.shop_id, "rank": r.rank, "score": r.personalized_score, "category": r.category,
                     "distance_m": r.distance_m, "min_price": r.min_price} for r in env.recommendations
                ],
                "model_versions": env.model_versions,
                "context": {"time_slot": env.context.time_slot.value} if env.context else {},
                "profile": ({"age": env.profile.age, "school_id": env.profile.school_id,
                             "has_meal_card": env.profile.has_meal_card} if env.profile else {}),
                "final_response": response.response, "response_time": response.response_time,
                "degraded": env.degraded,
            })
        except Exception as exc:  # noqa: BLE001
            record_failure(env, "interaction_log", exc, self.metrics)
        self.metrics.requests.labels(intent=nlu.intent.value).inc()
        self.metrics.latency.observe(response.response_time)
        self.metrics.observe_steps(env.timings_ms)
        if env.degraded:
            self.metrics.degraded.inc()
        if env.unsafe_terms or nlu.intent is Intent.UNSAFE_REQUEST:
            self.metrics.refusals.labels(stage="request").inc()
        elif "safety.output" in env.errors:
            self.metrics.refusals.labels(stage="output").inc()
        if env.recommendations:
            self.metrics.shown.inc(len(env.recommendations))
            self.metrics.lists.inc()
        if self.needs_search(env) and not env.recommendations:
            self.metrics.empty.inc()

    @staticmethod
    def _conversation(env: Envelope) -> str:
        return ConversationMemory.conversation_key(env.input.user_id, env.input.session_id)

    # -- all 8 steps ---------------------------------------------------------------------------
    def steps(self, user_input: UserInput, traffic: TrafficKind = "live") -> Envelope:
        """Steps 1-7 in-process (the served graph runs them one node each)."""
        env = self.start(user_input, traffic)
        self.understand(env)
        if env.needs_search:
            self.retrieve_and_generate(env)
            self.rank(env)
        self.answer(env)
        return env

    def process(self, user_input: UserInput, traffic: TrafficKind = "live") -> ChatbotResponse:
        return self.finish(self.steps(user_input, traffic))

    def chat(self, text: str, user_id: str = "guest", session_id: str | None = None,
             now: datetime | None = None, traffic: TrafficKind = "live") -> ChatbotResponse:
        return self.process(UserInput(user_id=user_id, text=text, session_id=session_id, timestamp=now), traffic)

    def warm_up(self) -> None:
        """One turn through every loaded step without touching memory or logs.

        The first call into each library (numpy kernels, onnxruntime, thread pools) is slow;
        paying it here keeps the first real child's request inside the funnel timeouts.
        """
        self.steps(UserInput(user_id="warmup", text="급식카드 되는 치킨집 추천해줘"))

    def close(self) -> None:
        self._pool.shutdown(wait=False)
        self.memory.close()
        self.events.close()
