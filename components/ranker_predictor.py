"""naviyam-ranker predictor: the ONNX Wide&Deep model in onnxruntime, nothing else.

Takes the model's named input tensors (wide, user_idx, shop_idx, category_idx) and returns
`score`. v2: one InferInput per tensor. v1: `{"inputs": {name: nested list}}` or
`{"instances": [{name: row}, ...]}`, answered as `{"predictions": [score, ...]}`.

Inputs are checked before onnxruntime sees them (shapes, at most ``MAX_ROWS`` rows, finite
``wide`` values, ids inside the embedding tables): anything else is a 400, never a 500.
"""
from __future__ import annotations

import asyncio
import uuid
from typing import Any

import kserve
import numpy as np
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

from naviyam.config import Settings
from naviyam.models import RANKER_CHECK_S
from naviyam.ranking.features import INPUT_NAMES, OUTPUT_NAME
from naviyam.ranking.scorer import OnnxRanker
from naviyam.registry import HotModel, ModelRegistry

DTYPES = {"wide": np.float32, "user_idx": np.int64, "shop_idx": np.int64, "category_idx": np.int64}
# A request ranks one child's candidate pool (a few hundred shops); far more is not a real request.
MAX_ROWS = 5000
# Numbers too big for the dtype, ragged lists, wrong types: numpy's ways of saying "bad input".
_CONVERSION_ERRORS = (KeyError, TypeError, ValueError, OverflowError, AttributeError)


def _arrays_from_v1(body: dict) -> dict[str, np.ndarray]:
    if "inputs" in body and isinstance(body["inputs"], dict):
        cols = body["inputs"]
    elif "instances" in body and isinstance(body["instances"], list):
        rows = body["instances"]
        cols = {name: [r[name] for r in rows] for name in INPUT_NAMES} if rows else {n: [] for n in INPUT_NAMES}
    else:
        raise InvalidInput("v1 body needs 'inputs' {name: values} or 'instances' [{name: value}]")
    return {name: np.asarray(cols[name], dtype=DTYPES[name]) for name in INPUT_NAMES}


def _check(arrays: dict[str, np.ndarray], wide_dim: int, vocab: dict[str, int]) -> None:
    """Shapes, row count, finite features and in-range ids (an out-of-range id would make
    onnxruntime's Gather fail: a 500 for what is bad input)."""
    wide = arrays["wide"]
    if wide.ndim != 2 or wide.shape[1] != wide_dim:
        raise InvalidInput(f"'wide' must be [N, {wide_dim}], got {list(wide.shape)}")
    n = wide.shape[0]
    if n > MAX_ROWS:
        raise InvalidInput(f"at most {MAX_ROWS} rows per request, got {n}")
    if not np.isfinite(wide).all():
        raise InvalidInput("'wide' holds NaN or infinite values")
    for name in INPUT_NAMES[1:]:
        if arrays[name].shape != (n,):
            raise InvalidInput(f"'{name}' must be [{n}], got {list(arrays[name].shape)}")
        if n and (arrays[name].min() < 0 or arrays[name].max() >= vocab[name]):
            raise InvalidInput(f"'{name}' values must be in [0, {vocab[name]})")


def _vocab(ranker: OnnxRanker) -> dict[str, int]:
    space = ranker.features.space
    return {"user_idx": space.n_users, "shop_idx": space.n_shops, "category_idx": space.n_categories}


class RankerPredictor(kserve.Model):
    """Serves the registry's ``channel`` (production or canary) version and follows its pointer:
    a promotion or rollback swaps the model between requests, without a restart."""

    def __init__(self, name: str, settings: Settings, channel: str = "production"):
        super().__init__(name)
        self.settings = settings
        self.channel = channel
        self.ready = False

    def load(self) -> bool:
        self.hot = HotModel(ModelRegistry.from_settings(self.settings), "ranker", OnnxRanker.load,
                            channel=self.channel, fallback_dir=self.settings.models_dir / "ranker",
                            min_check_interval_s=RANKER_CHECK_S)
        self.hot.maybe_reload(force=True)
        self.ready = True
        return True

    @property
    def ranker(self) -> OnnxRanker:
        return self.hot.get().value

    @property
    def version(self) -> str:
        return self.ranker.version

    def score(self, arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, OnnxRanker]:
        """Scores of checked inputs and the model that gave them (blocking). What ``predict``
        runs for a request, and what a transformer in this same process calls directly."""
        if self.hot.check_due:
            self.hot.maybe_reload()
        ranker = self.ranker  # one version for the whole request, whatever a reload does meanwhile
        try:
            arrays = {name: np.asarray(arrays[name], dtype=DTYPES[name]) for name in INPUT_NAMES}
        except _CONVERSION_ERRORS as exc:
            raise InvalidInput(f"bad ranker input: {str(exc)[:200]}") from None
        _check(arrays, ranker.wide_dim, _vocab(ranker))
        return ranker.predict(arrays), ranker

    async def reload_if_due(self) -> None:
        """Follow the registry pointer when its check is due; a reload loads a model, so it runs
        in a worker thread and the loop keeps serving (``score`` then finds nothing due)."""
        if self.hot.check_due:
            await asyncio.to_thread(self.hot.maybe_reload)

    async def predict(self, payload: Any, headers: dict[str, str] | None = None,
                      response_headers: dict[str, str] | None = None) -> Any:
        if isinstance(payload, InferRequest):
            if any(payload.get_input_by_name(name) is None for name in INPUT_NAMES):
                raise InvalidInput(f"v2 request needs inputs {', '.join(INPUT_NAMES)}")
            try:
                arrays = {name: np.asarray(payload.get_input_by_name(name).as_numpy(), dtype=DTYPES[name])
                          for name in INPUT_NAMES}
            except _CONVERSION_ERRORS as exc:
                raise InvalidInput(f"bad ranker input: {str(exc)[:200]}") from None
        elif isinstance(payload, dict):
            try:
                arrays = _arrays_from_v1(payload)
            except _CONVERSION_ERRORS as exc:
                raise InvalidInput(f"bad ranker input: {str(exc)[:200]}") from None
        else:
            raise InvalidInput("request body must be a JSON object")
        await self.reload_if_due()
        # Scoring ~100 rows is well under a millisecond: on the loop, as a fast-path node's work
        # (EnvelopeModel.runs_inline), not handed to a thread and back.
        scores, ranker = self.score(arrays)
        if isinstance(payload, InferRequest):
            out = InferOutput(name=OUTPUT_NAME, shape=[len(scores)], datatype="FP32", data=scores.astype(np.float32))
            return InferResponse(response_id=payload.id or uuid.uuid4().hex, model_name=self.name,
                                 infer_outputs=[out], model_version=ranker.version)
        return {"predictions": scores.astype(float).tolist(), "model_version": ranker.version}
