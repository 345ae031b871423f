"""naviyam-ranker transformer: fan-out to retrieval and candidates, Feast features, ONNX predictor.

As in KServe's Feast-transformer sample, the transformer owns the feature lookup and the
predictor only does arithmetic. It also owns the step-5 fan-out (see inference_graph/naviyam.yaml
for why that is not an Ensemble node): retriever and candidates are called concurrently, each
with its own timeout, and whatever comes back is ranked; a missing side marks the answer degraded.
A side served by this same process on the fast path (``serving.colocate``) runs on the event loop
instead, as its own ``predict`` would (``_call`` says why).
If the predictor fails, the order falls back to query relevance and funnel scores.

Features come from Feast's online store. When it cannot be reached at start-up the transformer is
still ready, degraded: it serves the ranker's training snapshot (the same features as of the
training window), says so in every turn (``model_versions["features"] == "snapshot"``) and in
``naviyam_feature_store_up`` (0) and ``naviyam_feature_store_failures_total{stage="connect"}``, and
tries Feast again every ``FEATURE_STORE_RETRY_S`` seconds, switching to it once it answers. Refusing
readiness instead would take the whole ranker out, and every turn would lose its personal order.

User and shop features read from Feast are kept in memory for at most ``FEATURE_TTL_S`` (60 s,
``naviyam.ranking.features.cache``): a served feature is never older than that behind the
store. Step 6 itself is
``NaviyamChatbot.ranking_pool`` / ``finish_ranking``, the rule the in-process ``rank`` uses too.

The answer is the ranked envelope without step 5's pools (``STEP5_POOLS``): step 6 consumed them
and nlg reads none of them.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from typing import Any

import numpy as np
from kserve.constants.constants import INFERENCE_CONTENT_LENGTH_HEADER
from kserve.protocol.infer_type import InferInput, InferRequest, InferResponse

from components.envelope_model import (EnvelopeModel, StepResult, decode, encode_answer, parse_envelope,
                                       parse_step_result)
from inference_graph.client import ServiceClient
from naviyam.chatbot import NaviyamChatbot, record_failure, timed_step
from naviyam.metrics import ChatMetrics, FeatureStoreMetrics
from naviyam.models import RANKER_CHECK_S, ModelBundle
from naviyam.ranking.features import INPUT_NAMES, OUTPUT_NAME, RankingFeatures
from naviyam.ranking.features.cache import CachedFeatureSource
from naviyam.registry import HotModel, ModelRegistry
from naviyam.schemas import STEP5_POOLS, Envelope

log = logging.getLogger(__name__)
V2_TYPES = {"wide": "FP32", "user_idx": "INT64", "shop_idx": "INT64", "category_idx": "INT64"}
FANOUT = ("naviyam-retriever", "naviyam-candidates")
# How often a transformer serving its snapshot asks Feast again (off the request path).
FEATURE_STORE_RETRY_S = 30.0


def feature_source(settings):
    """Feast online store when the feature repo has been applied and materialised, else the snapshot."""
    try:
        from naviyam.features.online import FeastFeatureSource

        return FeastFeatureSource.for_settings(settings)
    except Exception as exc:  # noqa: BLE001 - no Feast store yet: the ranker's own snapshot is the same data
        log.warning("Feast online store unavailable (%s); serving the ranker's training feature snapshot "
                    "(naviyam_feature_store_up 0) and retrying every %.0fs", exc, FEATURE_STORE_RETRY_S)
        return None


def _binary_input(name: str, array: np.ndarray) -> InferInput:
    # Open-inference binary tensor extension: the 100x144 wide matrix travels as raw bytes after
    # the JSON header instead of ~14k JSON numbers (encoding those was most of the predictor hop).
    tensor = InferInput(name=name, shape=list(array.shape), datatype=V2_TYPES[name])
    tensor.set_data_from_numpy(np.ascontiguousarray(array), binary_data=True)
    return tensor


class RankerTransformer(EnvelopeModel):
    def __init__(self, name: str, settings, channel: str = "production", metrics: ChatMetrics | None = None,
                 models: ModelBundle | None = None):
        super().__init__(name, settings)
        self.shared_models = models  # the process's bundle when colocated (serving.colocate)
        # Fan-out steps served by this same process, by service name, and the predictor loaded
        # beside it (components/server.py, serving.colocate).
        self.local_steps: dict[str, Any] = {}
        self.local_predictor: Any = None
        self.channel = channel
        self.metrics = metrics or ChatMetrics()
        self.feature_metrics = FeatureStoreMetrics(self.metrics.registry)
        self._source = None
        self._next_retry = 0.0
        self._retrying: asyncio.Future | None = None

    def load_parts(self) -> None:
        models = self.shared_models or ModelBundle(self.settings)
        models.warm_up(("catalog",))
        self.bot = NaviyamChatbot(models, metrics=self.metrics)
        self._source = self.connect_feature_store()

        def load_features(model_dir):
            meta = json.loads((model_dir / "meta.json").read_text())
            source = self._source  # read at each load: a reconnect reloads with Feast
            backend = "feast" if source is not None else "snapshot"
            # User and shop rows from the store are reused for at most FEATURE_TTL_S (cache module);
            # a reload (promotion, reconnect) starts with an empty cache.
            served = CachedFeatureSource(source) if source is not None else None
            if served is not None and not self.ready:
                # At start-up only (before the server is ready): every shop once, instead of a
                # store read in each early turn. A reload under traffic (a promotion, a Feast
                # reconnect) fills by use, as a prefill holding the GIL would stall the turns in
                # flight past their predictor timeout.
                served.prefill(models.catalog.shops["shop_id"].tolist())
            return RankingFeatures.load(model_dir / "features", source=served), meta["version"], backend

        # Features follow the same registry pointer as the predictor: they change together.
        self.hot = HotModel(ModelRegistry.from_settings(self.settings), "ranker", load_features,
                            channel=self.channel, fallback_dir=self.settings.models_dir / "ranker",
                            min_check_interval_s=RANKER_CHECK_S)
        self.hot.maybe_reload(force=True)
        self._features_loaded()
        serving = self.settings.serving
        self.fanout_urls = {name: serving.predict_url(name) for name in FANOUT}
        self.fanout_timeout_s = serving.fanout_timeout_s
        self.client = ServiceClient(max_connections=64)

    @property
    def features_backend(self) -> str:
        """Where the served features come from: "feast" or "snapshot" (the training window's)."""
        return self.hot.get().value[2]

    def connect_feature_store(self):
        """Feast's online source, or None (the snapshot is served): visible in the metrics either way."""
        source = feature_source(self.settings)
        if source is None:
            self.feature_metrics.failures.labels(stage="connect").inc()
            self._next_retry = time.monotonic() + FEATURE_STORE_RETRY_S
        return source

    def reconnect_feature_store(self) -> bool:
        """Ask Feast again; once it answers, load the served version's features from it. Blocking."""
        source = self.connect_feature_store()
        if source is None:
            return False
        self._source = source
        self.hot.maybe_reload(force=True)  # same version, features now from Feast (a failed load keeps the old)
        if self._features_loaded() == "feast":
            log.warning("Feast online store reachable again: ranker features now come from Feast")
            return True
        self._source = None  # the reload failed (logged by HotModel): still the snapshot, try again later
        self.feature_metrics.failures.labels(stage="connect").inc()
        return False

    def _features_loaded(self) -> str:
        backend = self.features_backend
        self.feature_metrics.up.set(1 if backend == "feast" else 0)
        return backend

    def _maybe_retry_feature_store(self) -> None:
        if self._source is not None or time.monotonic() < self._next_retry:
            return
        if self._retrying is not None and not self._retrying.done():
            return
        self._next_retry = time.monotonic() + FEATURE_STORE_RETRY_S
        # In a worker thread, not awaited: this request is ranked on the snapshot meanwhile.
        self._retrying = asyncio.get_running_loop().run_in_executor(None, self.reconnect_feature_store)

    def _served_version(self) -> str:
        try:
            return str(self.hot.get().value[1])
        except Exception:  # noqa: BLE001 - nothing loaded: still counted, under "none"
            return "none"

    def stop(self) -> None:
        # ModelServer unloads models on SIGTERM from inside its event loop: close the pooled
        # connections there rather than leaving them to the garbage collector at exit.
        super().stop()
        client = getattr(self, "client", None)
        if client is not None:
            with contextlib.suppress(RuntimeError):  # no running loop: nothing left to close on
                asyncio.get_running_loop().create_task(client.aclose())

    async def _call(self, name: str, env: Envelope, body: bytes | None, headers: dict[str, str]) -> StepResult | Envelope:
        local = self.local_steps.get(name)
        if local is not None and local.runs_inline:
            # Served by this very process (serving.colocate) on the fast path: the node's step on
            # the envelope itself, on the loop, as its own predict runs it and as the in-process
            # chatbot runs both sides on one envelope (each writes only its own fields). A worker
            # thread per side bought nothing here: both sides are mostly GIL-bound Python in
            # one process, and the two hand-offs and their contention cost the served graph ~5% of
            # its CPU per turn (make bench, paired rounds: 1.47-1.54x -> 1.38-1.45x). Nor could
            # the timeout stop a side: it only stopped waiting while the thread went on
            # spending the CPU, so on a busy core it turned load into degraded answers.
            return local.run_step(env)
        if local is not None:
            # A colocated node whose step may take long (not runs_inline): a worker thread on a
            # copy of the envelope (a late step must not write into the turn after it moved on),
            # with the same timeout as over HTTP.
            async with asyncio.timeout(self.fanout_timeout_s):
                return await asyncio.to_thread(local.run_step, env.model_copy(deep=True))
        async with asyncio.timeout(self.fanout_timeout_s):
            resp = await self.client.post(self.fanout_urls[name], content=body, headers=headers)
        if resp.status_code != 200:
            raise RuntimeError(f"HTTP {resp.status_code}: {resp.content[:200]!r}")
        # Only the step's own fields: the rest of its answer is the envelope sent (a bad answer
        # is that side failing, the turn degrades).
        return parse_step_result(resp.content)

    async def fan_out(self, env: Envelope, headers: dict[str, str] | None) -> None:
        remote = any(name not in self.local_steps for name in FANOUT)
        body = env.model_dump_json().encode("utf-8") if remote else None
        fwd = {k: v for k, v in (headers or {}).items() if k.lower() == "x-request-id"}
        fwd["content-type"] = "application/json"
        with timed_step(env, "fanout"):
            results = await asyncio.gather(*(self._call(n, env, body, fwd) for n in FANOUT), return_exceptions=True)
        self._merge(env, results)

    def _merge(self, env: Envelope, results: list) -> None:
        """Each side's own fields into ``env``; a failed or late side marks the turn degraded."""
        for name, part in zip(FANOUT, results):
            step = name.removeprefix("naviyam-")
            if isinstance(part, BaseException):
                record_failure(env, "retrieval" if step == "retriever" else step, RuntimeError(f"{name}: {part!r}"),
                               self.metrics)
                continue
            if step == "retriever":
                env.retrieval = part.retrieval
            else:
                env.candidates = part.candidates
            for key in ("timings_ms", "model_versions", "errors"):
                getattr(env, key).update({k: v for k, v in getattr(part, key).items() if k not in getattr(env, key)})
            env.degraded = env.degraded or part.degraded

    async def score(self, env: Envelope, pool: dict[str, float],
                    headers: dict[str, str] | None) -> tuple[np.ndarray, str]:
        """Personal scores aligned with ``pool`` and the version that gave them."""
        if self.hot.check_due:  # a reload loads a model: not on the event loop, which keeps serving
            await asyncio.to_thread(self.hot.maybe_reload)
        self._maybe_retry_feature_store()
        inputs, version = await asyncio.to_thread(self._inputs, env, pool)
        if self.local_predictor is not None:
            # The predictor of this process (serving.colocate): its checks and model, on the
            # arrays as they are, without the HTTP hop and the tensor round trip.
            await self.local_predictor.reload_if_due()
            scores, _ = self.local_predictor.score(inputs)
            return np.asarray(scores, dtype=np.float32), version
        request = InferRequest(model_name=self.name, request_id=uuid.uuid4().hex,
                               infer_inputs=[_binary_input(n, inputs[n]) for n in INPUT_NAMES])
        response = await self.call_predictor(request, headers)
        output = next(o for o in response.outputs if o.name == OUTPUT_NAME)
        return np.asarray(output.as_numpy(), dtype=np.float32), version

    def _inputs(self, env: Envelope, pool: dict[str, float]) -> tuple[dict[str, np.ndarray], str]:
        """The model inputs of ``pool`` (features from Feast or the snapshot) and their version."""
        features, version, backend = self.hot.get().value
        try:
            inputs = features.build_inputs([env.profile], list(pool), env.context)
        except Exception:
            if backend == "feast":
                self.feature_metrics.failures.labels(stage="lookup").inc()
                self.feature_metrics.up.set(0)
            raise
        if backend == "feast":
            self.feature_metrics.up.set(1)
        return inputs, str(version)

    async def call_predictor(self, request: InferRequest, headers: dict[str, str] | None) -> InferResponse:
        """POST the request to ``--predictor_host`` as open-inference v2 with binary tensors.

        Not through ``kserve.Model.predict``: kserve 0.21 always adds ``Content-Type:
        application/json`` to predictor calls, so the predictor cannot parse a binary-extension
        body; the URL, protocol and timeout still come from KServe's predictor flags.
        """
        config = self.predictor_config
        if config is None or not config.predictor_host:
            raise RuntimeError("no --predictor_host configured")
        if config.predictor_protocol != "v2":
            raise RuntimeError(f"the ranker predictor speaks v2; --predictor_protocol is {config.predictor_protocol}")
        body, json_length = request.to_rest()  # every input is binary (_binary_input): JSON header + bytes
        out_headers = {k: v for k, v in (headers or {}).items() if k.lower() == "x-request-id"}
        out_headers["content-type"] = "application/octet-stream"
        out_headers[INFERENCE_CONTENT_LENGTH_HEADER] = str(json_length)
        url = f"{config.predictor_base_url}/v2/models/{self.name}/infer"
        async with asyncio.timeout(config.predictor_request_timeout_seconds):
            resp = await self.client.post(url, content=body, headers=out_headers)
        if resp.status_code != 200:
            raise RuntimeError(f"predictor HTTP {resp.status_code}: {resp.content[:200]!r}")
        return InferResponse.from_bytes(resp.content, len(resp.content))

    async def predict(self, payload: Any, headers: dict[str, str] | None = None,
                      response_headers: dict[str, str] | None = None) -> Any:
        body, form = decode(payload)
        env = parse_envelope(body)
        if env.needs_search:
            await self.fan_out(env, headers)
            await self.rank(env, headers)
            env.model_versions["features"] = self.features_backend
        return encode_answer(env, form, self.name, response_headers, exclude=STEP5_POOLS)

    def _count_turn(self, error: BaseException | None) -> None:
        # The canary arm of the turn: which channel and version ranked it, and whether it could.
        # The version is the loaded one, never the envelope's (a forged body must not add series).
        self.metrics.ranker_turns.labels(channel=self.channel, version=self._served_version(),
                                         outcome="scored" if error is None else "failed").inc()

    async def rank(self, env: Envelope, headers: dict[str, str] | None) -> None:
        """Step 6 as ``NaviyamChatbot.rank`` does it (``ranking_pool`` -> score -> ``finish_ranking``),
        scored through the predictor."""
        with timed_step(env, "ranking"):
            # Pool and final order are a few ms of CPU: on the loop (EnvelopeModel.runs_inline);
            # the feature read, which may go over the network to the online store, is not.
            pool = self.bot.ranking_pool(env)
            scores = version = error = None
            if pool:
                try:
                    scores, version = await self.score(env, pool, headers)
                except Exception as exc:  # noqa: BLE001 - rank from relevance instead
                    error = exc
                self._count_turn(error)
            self.bot.finish_ranking(env, pool, scores, version=version, error=error)
