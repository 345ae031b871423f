"""naviyam-ranker predictor: the ONNX Wide&Deep model in onnxruntime, nothing else.

Takes the model's named input tensors (wide, user_idx, shop_idx, category_idx) and returns
`score`. v2: one InferInput per tensor. v1: `{"inputs": {name: nested list}}` or
`{"instances": [{name: row}, ...]}`, answered as `{"predictions": [score, ...]}`.
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
from naviyam.ranking.features import INPUT_NAMES, OUTPUT_NAME
from naviyam.ranking.scorer import OnnxRanker
from naviyam.registry import HotModel, ModelRegistry

DTYPES = {"wide": np.float32, "user_idx": np.int64, "shop_idx": np.int64, "category_idx": np.int64}


def _arrays_from_v1(body: dict) -> dict[str, np.ndarray]:
    if "inputs" in body and isinstance(body["inputs"], dict):
        cols = body["inputs"]
    elif "instances" in body and isinstance(body["instances"], list):
        rows = body["instances"]
        cols = {name: [r[name] for r in rows] for name in INPUT_NAMES} if rows else {n: [] for n in INPUT_NAMES}
    else:
        raise InvalidInput("v1 body needs 'inputs' {name: values} or 'instances' [{name: value}]")
    return {name: np.asarray(cols[name], dtype=DTYPES[name]) for name in INPUT_NAMES}


def _check(arrays: dict[str, np.ndarray], wide_dim: int) -> None:
    n = arrays["wide"].shape[0]
    if arrays["wide"].ndim != 2 or arrays["wide"].shape[1] != wide_dim:
        raise InvalidInput(f"'wide' must be [N, {wide_dim}], got {list(arrays['wide'].shape)}")
    for name in INPUT_NAMES[1:]:
        if arrays[name].shape != (n,):
            raise InvalidInput(f"'{name}' must be [{n}], got {list(arrays[name].shape)}")


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
                            min_check_interval_s=2.0)
        self.hot.maybe_reload(force=True)
        self.ready = True
        return True

    @property
    def ranker(self) -> OnnxRanker:
        return self.hot.get().value

    @property
    def version(self) -> str:
        return self.ranker.version

    async def predict(self, payload: Any, headers: dict[str, str] | None = None,
                      response_headers: dict[str, str] | None = None) -> Any:
        if isinstance(payload, InferRequest):
            try:
                arrays = {name: np.asarray(payload.get_input_by_name(name).as_numpy(), dtype=DTYPES[name])
                          for name in INPUT_NAMES}
            except AttributeError:
                raise InvalidInput(f"v2 request needs inputs {', '.join(INPUT_NAMES)}") from None
        elif isinstance(payload, dict):
            try:
                arrays = _arrays_from_v1(payload)
            except (KeyError, TypeError, ValueError) as exc:
                raise InvalidInput(f"bad ranker input: {exc}") from None
        else:
            raise InvalidInput("request body must be a JSON object")
        self.hot.maybe_reload()
        ranker = self.ranker  # one version for the whole request, whatever a reload does meanwhile
        _check(arrays, ranker.wide_dim)
        scores = await asyncio.to_thread(ranker.predict, arrays)
        if isinstance(payload, InferRequest):
            out = InferOutput(name=OUTPUT_NAME, shape=[len(scores)], datatype="FP32", data=scores.astype(np.float32))
            return InferResponse(response_id=payload.id or uuid.uuid4().hex, model_name=self.name,
                                 infer_outputs=[out], model_version=ranker.version)
        return {"predictions": scores.astype(float).tolist(), "model_version": ranker.version}
