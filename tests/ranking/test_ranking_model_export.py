"""The Wide&Deep network and its ONNX export (torch vs onnxruntime parity)."""
from __future__ import annotations

from datetime import datetime

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from naviyam.ranking.export import OPSET, export_onnx
from naviyam.ranking.features import INPUT_NAMES, OUTPUT_NAME, RankingFeatures
from naviyam.ranking.model import WideAndDeep, WideDeepConfig
from naviyam.ranking.train import load_checkpoint, predict
from naviyam.schemas import RequestContext, TimeSlot

CFG = WideDeepConfig(wide_dim=20, n_users=50, n_shops=40, n_categories=13)


def _random_inputs(cfg: WideDeepConfig, n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "wide": rng.normal(0, 1, (n, cfg.wide_dim)).astype(np.float32),
        "user_idx": rng.integers(0, cfg.n_users, n).astype(np.int64),
        "shop_idx": rng.integers(0, cfg.n_shops, n).astype(np.int64),
        "category_idx": rng.integers(0, cfg.n_categories, n).astype(np.int64),
    }


def _ort(path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_architecture_follows_the_guide():
    torch.manual_seed(0)
    model = WideAndDeep(CFG)
    assert model.wide.in_features == 20 and model.wide.out_features == 1
    assert (model.user_emb.embedding_dim, model.shop_emb.embedding_dim, model.category_emb.embedding_dim) == (64, 64, 16)
    linears = [m for m in model.deep if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(144, 128), (128, 64), (64, 32), (32, 1)]
    kinds = [type(m).__name__ for m in model.deep]
    assert kinds == ["Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout", "Linear", "ReLU", "Linear"]
    assert all(m.p == 0.3 for m in model.deep if isinstance(m, nn.Dropout))
    x = {k: torch.from_numpy(v) for k, v in _random_inputs(CFG, 7).items()}
    model.eval()
    out = model(**x)
    assert out.shape == (7,) and bool(((out >= 0) & (out <= 1)).all())
    # output = sigmoid(wide_logit + deep_logit)
    torch.testing.assert_close(out, torch.sigmoid(model.logits(**x)))


def test_onnx_matches_torch_on_random_inputs(tmp_path):
    torch.manual_seed(1)
    model = WideAndDeep(CFG).eval()
    with torch.no_grad():  # make the deep part non-trivial
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    path = export_onnx(model, tmp_path / "m.onnx")
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= OPSET >= 17
    assert [i.name for i in proto.graph.input] == list(INPUT_NAMES)
    assert [o.name for o in proto.graph.output] == [OUTPUT_NAME]
    session = _ort(path)
    for n in (1, 3, 257):  # dynamic batch axis
        inputs = _random_inputs(CFG, n, seed=n)
        (got,) = session.run([OUTPUT_NAME], inputs)
        assert got.shape == (n,)
        np.testing.assert_allclose(got, predict(model, inputs), rtol=0, atol=1e-5)


def test_onnx_matches_torch_on_real_features(ranking_data, trained):
    _, catalog, _ = ranking_data
    model_dir, _ = trained
    model, space, normaliser = load_checkpoint(model_dir)
    features = RankingFeatures.load(model_dir / "features")
    assert features.space == space and features.normaliser == normaliser
    session = _ort(model_dir / "model.onnx")
    shops = catalog.shops["shop_id"].tolist()
    for uid in catalog.users["user_id"].iloc[:5]:
        user = catalog.user(uid)
        lat, lon = catalog.school_location(user.school_id)
        ctx = RequestContext(now=datetime(2026, 11, 1, 19), time_slot=TimeSlot.DINNER, origin_lat=lat, origin_lon=lon)
        inputs = features.build_inputs([user], shops, ctx)
        (got,) = session.run([OUTPUT_NAME], inputs)
        diff = np.abs(got - predict(model, inputs)).max()
        assert diff < 1e-5, diff


def test_grow_vocab_keeps_learned_rows():
    torch.manual_seed(2)
    model = WideAndDeep(CFG)
    grown = model.grow_vocab(60, 45)
    assert grown.user_emb.num_embeddings == 60 and grown.shop_emb.num_embeddings == 45
    torch.testing.assert_close(grown.user_emb.weight[:50], model.user_emb.weight)
    torch.testing.assert_close(grown.user_emb.weight[50], model.user_emb.weight[0])  # new ids start as "unknown"
    torch.testing.assert_close(grown.wide.weight, model.wide.weight)
    with pytest.raises(ValueError):
        model.grow_vocab(10, 45)
