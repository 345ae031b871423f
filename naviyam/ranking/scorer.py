"""Serving-side ranker: onnxruntime + the saved feature tables. Never imports torch.

A model directory (written by ``naviyam.ranking.train``) holds::

    model.onnx      the exported network
    features/       feature_space.json, normaliser.json, user/shop feature snapshots
    meta.json       version, metrics, training window
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from naviyam.ranking.features import OUTPUT_NAME, FeatureSource, RankingFeatures
from naviyam.schemas import RequestContext, UserProfile

MODEL_FILE = "model.onnx"
FEATURES_DIR = "features"
META_FILE = "meta.json"


class OnnxRanker:
    def __init__(self, session: ort.InferenceSession, features: RankingFeatures, meta: dict) -> None:
        self._session = session
        self.features = features
        self.meta = meta

    @classmethod
    def load(cls, model_dir: Path, source: FeatureSource | None = None, threads: int = 1) -> "OnnxRanker":
        """``source`` replaces the saved snapshot (e.g. an online feature store).

        One intra-op thread: a 100-row batch is far too small to gain from more, and serving
        processes share the host's cores.
        """
        model_dir = Path(model_dir)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(str(model_dir / MODEL_FILE), sess_options=opts,
                                       providers=["CPUExecutionProvider"])
        features = RankingFeatures.load(model_dir / FEATURES_DIR, source=source)
        meta_path = model_dir / META_FILE
        meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
        return cls(session, features, meta)

    @property
    def version(self) -> str:
        return str(self.meta.get("version", "wide_deep_unversioned"))

    @property
    def wide_dim(self) -> int:
        """Width of the ``wide`` input the exported graph expects."""
        return int(next(i for i in self._session.get_inputs() if i.name == "wide").shape[1])

    def predict(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """Scores for already-built model inputs (see ``RankingFeatures``)."""
        if inputs["wide"].shape[0] == 0:
            return np.zeros(0, dtype=np.float32)
        (scores,) = self._session.run([OUTPUT_NAME], inputs)
        return scores

    def score(self, user: UserProfile, shop_ids: Sequence[str], context: RequestContext) -> np.ndarray:
        """Personalised score in [0, 1] per shop, aligned with ``shop_ids``."""
        shop_ids = list(shop_ids)
        if not shop_ids:
            return np.zeros(0, dtype=np.float32)
        return self.predict(self.features.build_inputs([user], shop_ids, context))

    def rank(self, user: UserProfile, shop_ids: Sequence[str], context: RequestContext,
             top_k: int | None = None) -> list[tuple[str, float]]:
        """(shop_id, score) best first; ties keep the candidate order."""
        shop_ids = list(shop_ids)
        scores = self.score(user, shop_ids, context)
        order = np.argsort(-scores, kind="stable")
        if top_k is not None:
            order = order[:top_k]
        return [(shop_ids[i], float(scores[i])) for i in order]
