"""naviyam-ranker transformer: fan-out to retrieval and candidates, Feast features, ONNX predictor.

As in KServe's Feast-transformer sample, the transformer owns the feature lookup and the
predictor only does arithmetic. It also owns the step-5 fan-out (see inference_graph/naviyam.yaml
for why that is not an Ensemble node): retriever and candidates are called concurrently, each
with its own timeout, and whatever comes back is ranked; a missing side marks the answer degraded.
If the predictor fails, the order falls back to query relevance and funnel scores.
"""
from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any

import httpx
import kserve
import numpy as np
from kserve.protocol.infer_type import InferInput, InferRequest

from components.envelope_model import EnvelopeModel, decode, encode, parse_envelope
from naviyam.chatbot import NaviyamChatbot, record_failure, timed_step
from naviyam.models import ModelBundle
from naviyam.ranking.features import INPUT_NAMES, OUTPUT_NAME
from naviyam.schemas import Envelope

log = logging.getLogger(__name__)
V2_TYPES = {"wide": "FP32", "user_idx": "INT64", "shop_idx": "INT64", "category_idx": "INT64"}
FANOUT = ("naviyam-retriever", "naviyam-candidates")


def feature_source(settings):
    """Feast online store when the feature repo has been applied and materialised, else the snapshot."""
    try:
        from naviyam.features.online import FeastFeatureSource

        return FeastFeatureSource.for_settings(settings)
    except Exception as exc:  # noqa: BLE001 - no Feast store yet: the ranker's own snapshot is the same data
        log.warning("Feast online store unavailable (%s); using the ranker's feature snapshot", exc)
        return None


class RankerTransformer(EnvelopeModel):
    def __init__(self, name: str, settings, channel: str = "production"):
        super().__init__(name, settings)
        self.channel = channel

    def load_parts(self) -> None:
        from naviyam.ranking.features import RankingFeatures

        models = ModelBundle(self.settings)
        models.warm_up(("catalog",))
        self.bot = NaviyamChatbot(models)
        source = feature_source(self.settings)
        self.features_backend = "feast" if source is not None else "snapshot"
        from naviyam.registry import HotModel, ModelRegistry

        def load_features(model_dir):
            meta = json.loads((model_dir / "meta.json").read_text())
            return RankingFeatures.load(model_dir / "features", source=source), meta["version"]

        # Features follow the same registry pointer as the predictor: they change together.
        self.hot = HotModel(ModelRegistry.from_settings(self.settings), "ranker", load_features,
                            channel=self.channel, fallback_dir=self.settings.models_dir / "ranker",
                            min_check_interval_s=2.0)
        self.hot.maybe_reload(force=True)
        serving = self.settings.serving
        self.fanout_urls = {name: serving.predict_url(name) for name in FANOUT}
        self.client = httpx.AsyncClient(timeout=serving.fanout_timeout_s,
                                        limits=httpx.Limits(max_keepalive_connections=64))

    async def _call(self, name: str, body: dict, headers: dict[str, str]) -> dict:
        resp = await self.client.post(self.fanout_urls[name], json=body, headers=headers)
        resp.raise_for_status()
        return resp.json()

    async def fan_out(self, env: Envelope, headers: dict[str, str] | None) -> None:
        body = env.model_dump(mode="json")
        fwd = {k: v for k, v in (headers or {}).items() if k.lower() == "x-request-id"}
        with timed_step(env, "fanout"):
            results = await asyncio.gather(*(self._call(n, body, fwd) for n in FANOUT), return_exceptions=True)
        for name, result in zip(FANOUT, results):
            step = name.removeprefix("naviyam-")
            if isinstance(result, BaseException):
                record_failure(env, "retrieval" if step == "retriever" else step, RuntimeError(f"{name}: {result!r}"))
                continue
            part = Envelope.model_validate(result)
            if step == "retriever":
                env.retrieval = part.retrieval
            else:
                env.candidates = part.candidates
            for key in ("timings_ms", "model_versions", "errors"):
                getattr(env, key).update({k: v for k, v in getattr(part, key).items() if k not in getattr(env, key)})
            env.degraded = env.degraded or part.degraded

    async def score(self, env: Envelope, pool: dict[str, float], headers: dict[str, str] | None):
        self.hot.maybe_reload()
        features, version = self.hot.get().value
        inputs = await asyncio.to_thread(features.build_inputs, [env.profile], list(pool), env.context)
        request = InferRequest(
            model_name=self.name, request_id=uuid.uuid4().hex,
            infer_inputs=[InferInput(name=n, shape=list(inputs[n].shape), datatype=V2_TYPES[n], data=inputs[n])
                          for n in INPUT_NAMES],
        )
        # kserve.Model.predict (not EnvelopeModel's) sends it to --predictor_host with the
        # configured protocol and timeout.
        response = await kserve.Model.predict(self, request, headers)
        output = next(o for o in response.outputs if o.name == OUTPUT_NAME)
        env.model_versions["ranking"] = version
        return np.asarray(output.as_numpy(), dtype=np.float32)

    async def predict(self, payload: Any, headers: dict[str, str] | None = None,
                      response_headers: dict[str, str] | None = None) -> Any:
        body, form = decode(payload)
        env = parse_envelope(body)
        if env.needs_search:
            await self.fan_out(env, headers)
            with timed_step(env, "ranking"):
                pool = await asyncio.to_thread(self.bot.candidate_pool, env)
                scores = None
                if pool:
                    try:
                        scores = await self.score(env, pool, headers)
                    except Exception as exc:  # noqa: BLE001 - rank from relevance instead
                        record_failure(env, "ranking", exc)
                await asyncio.to_thread(self.bot.order, env, pool, scores)
            env.model_versions["features"] = self.features_backend
        return encode(env.model_dump(mode="json"), form, self.name)
