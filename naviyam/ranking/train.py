"""Training (and incremental re-training) of the Wide&Deep ranker (step 6, and the retrain pipeline).

``train_ranker`` writes a self-contained model directory::

    model.pt        state dict + network config + feature space + normaliser (torch checkpoint)
    model.onnx      what serving loads (``naviyam.ranking.scorer.OnnxRanker``)
    features/       feature_space.json, normaliser.json, user/shop feature snapshots (parquet)
    meta.json       version, metrics on the held-out window, training window, sample counts

The last ``holdout_days`` of events are never used for features or samples; they are where
``evaluate_ranker`` measures the model.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from naviyam.config import Settings
from naviyam.data.catalog import Catalog
from naviyam.features.historical import training_feature_columns
from naviyam.features.training import training_store
from naviyam.ranking.evaluate import evaluate_ranker
from naviyam.ranking.export import export_onnx
from naviyam.ranking.features import (
    WIDE_DIM, WIDE_FEATURES, FeatureHistory, FeatureSpace, Normaliser, RankingFeatures,
    frame_columns, make_inputs, profile_columns, raw_wide_features,
)
from naviyam.ranking.model import WideAndDeep, WideDeepConfig
from naviyam.ranking.samples import (
    TEST_DAYS, balance, label_events, mark_hard_negatives, time_split, unshown_negatives,
)
from naviyam.ranking.scorer import FEATURES_DIR, META_FILE, MODEL_FILE

if TYPE_CHECKING:  # pragma: no cover
    from feast import FeatureStore

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "model.pt"
# Share of training rows whose user/shop id is replaced by the "unknown" row 0, so that row
# learns what an average user/shop looks like (new users are scored through it).
USER_DROPOUT = 0.1
SHOP_DROPOUT = 0.02
# Unshown nearby shops drawn per session as extra negatives (see samples.unshown_negatives).
UNSHOWN_PER_SESSION = 8


# --------------------------------------------------------------------------- checkpoints


def save_checkpoint(path: Path, model: WideAndDeep, features: RankingFeatures, extra: dict | None = None) -> None:
    torch.save({
        "state_dict": model.state_dict(),
        "config": model.config.to_dict(),
        "feature_space": features.space.to_dict(),
        "normaliser": features.normaliser.to_dict(),
        "wide_features": list(WIDE_FEATURES),
        **(extra or {}),
    }, path)


def load_checkpoint(model_dir: Path) -> tuple[WideAndDeep, FeatureSpace, Normaliser]:
    """The torch model of a model directory (or a ``model.pt`` path), in eval mode."""
    path = Path(model_dir)
    path = path / CHECKPOINT_FILE if path.is_dir() else path
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if list(ckpt.get("wide_features", [])) != list(WIDE_FEATURES):
        raise ValueError(f"{path} was trained with a different wide-feature layout; retrain from scratch")
    model = WideAndDeep(WideDeepConfig.from_dict(ckpt["config"]))
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    return model, FeatureSpace.from_dict(ckpt["feature_space"]), Normaliser.from_dict(ckpt["normaliser"])


# --------------------------------------------------------------------------- sample features


def sample_frames(settings: Settings, catalog: Catalog, samples: pd.DataFrame,
                  store: "FeatureStore") -> dict:
    """As-of feature columns for training samples (each sees only days before its session).

    The user/shop features and the "tried this shop before" flags come from Feast's
    point-in-time join over ``store`` (``naviyam.features.historical``), the one join there is.
    """
    users = samples["user_id"].tolist()
    schools = catalog.schools.reindex(catalog.users["school_id"].reindex(users).tolist())
    context = {
        # The child asks from school (events carry no location): the same origin evaluation uses.
        "now": samples["timestamp"].to_numpy(dtype="datetime64[ns]"),
        "time_slot": samples["time_slot"].astype(str).to_numpy(dtype=object),
        "origin_lat": schools["lat"].to_numpy(dtype=np.float64),
        "origin_lon": schools["lon"].to_numpy(dtype=np.float64),
    }
    as_of = training_feature_columns(settings, samples, store=store)
    return {
        "profiles": profile_columns(catalog.users.reindex(users).assign(user_id=users)),
        "users": frame_columns(as_of["users"]),
        "shops": frame_columns(as_of["shops"]),
        "context": context,
        "pair_flags": as_of["pair_flags"],
    }


def sample_raw_wide(settings: Settings, catalog: Catalog, samples: pd.DataFrame,
                    store: "FeatureStore") -> np.ndarray:
    f = sample_frames(settings, catalog, samples, store)
    return raw_wide_features(f["profiles"], f["users"], f["shops"], f["context"], f["pair_flags"])


def sample_inputs(space: FeatureSpace, normaliser: Normaliser, raw_wide: np.ndarray,
                  samples: pd.DataFrame, catalog: Catalog) -> dict[str, np.ndarray]:
    categories = catalog.shops["category"].reindex(samples["shop_id"].tolist()).fillna("").tolist()
    return make_inputs(normaliser.transform(raw_wide), space.user_index(samples["user_id"].tolist()),
                       space.shop_index(samples["shop_id"].tolist()), space.category_index(categories))


@torch.no_grad()
def predict(model: WideAndDeep, inputs: dict[str, np.ndarray], batch_size: int = 65536) -> np.ndarray:
    model.eval()
    n = inputs["wide"].shape[0]
    out = np.empty(n, dtype=np.float32)
    for start in range(0, n, batch_size):
        sl = slice(start, start + batch_size)
        out[sl] = model(*(torch.from_numpy(inputs[k][sl]) for k in ("wide", "user_idx", "shop_idx", "category_idx"))).numpy()
    return out


# --------------------------------------------------------------------------- training


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """Caps torch's intra-op threads for the call only (the host's cores are shared)."""
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def fit(model: WideAndDeep, inputs: dict[str, np.ndarray], labels: np.ndarray, weights: np.ndarray,
        *, epochs: int, batch_size: int, lr: float, seed: int, progress: bool = False) -> list[float]:
    """Weighted BCE with Adam; returns the mean training loss of each epoch."""
    gen = torch.Generator().manual_seed(seed)
    tensors = {k: torch.from_numpy(v) for k, v in inputs.items()}
    y = torch.from_numpy(labels.astype(np.float32))
    w = torch.from_numpy(weights.astype(np.float32))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    n = y.shape[0]
    losses: list[float] = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=epochs * ((n + batch_size - 1) // batch_size), desc="wide&deep", unit="batch")
    model.train()
    for epoch in range(epochs):
        perm = torch.randperm(n, generator=gen)
        total, weight_sum = 0.0, 0.0
        for start in range(0, n, batch_size):
            idx = perm[start:start + batch_size]
            user_idx = tensors["user_idx"][idx]
            shop_idx = tensors["shop_idx"][idx]
            user_idx = torch.where(torch.rand(idx.shape[0], generator=gen) < USER_DROPOUT, 0, user_idx)
            shop_idx = torch.where(torch.rand(idx.shape[0], generator=gen) < SHOP_DROPOUT, 0, shop_idx)
            logits = model.logits(tensors["wide"][idx], user_idx, shop_idx, tensors["category_idx"][idx])
            bw = w[idx]
            # Sample weights make an order count twice a click and a hard negative 1.5 times.
            loss = (F.binary_cross_entropy_with_logits(logits, y[idx], reduction="none") * bw).sum() / bw.sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * float(bw.sum())
            weight_sum += float(bw.sum())
            if bar is not None:
                bar.update(1)
        losses.append(total / max(weight_sum, 1e-12))
        log.info("epoch %d/%d weighted BCE %.4f", epoch + 1, epochs, losses[-1])
    if bar is not None:
        bar.close()
    model.eval()
    return losses


def _weighted_bce(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> float:
    p = np.clip(scores.astype(np.float64), 1e-7, 1 - 1e-7)
    loss = -(labels * np.log(p) + (1 - labels) * np.log(1 - p))
    return float(np.sum(loss * weights) / np.sum(weights))


def _training_window(events: pd.DataFrame, holdout_days: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.Timestamp]:
    """(train events, held-out events, cutoff); holdout_days=0 trains on everything."""
    if holdout_days > 0:
        split = time_split(events, holdout_days)
        return split.train, split.test, split.cutoff
    cutoff = events["timestamp"].max().normalize() + pd.Timedelta(days=1)
    return events, events.iloc[:0], cutoff


def train_ranker(settings: Settings, catalog: Catalog, events: pd.DataFrame, out_dir: Path,
                 init_from: Path | None = None, *, holdout_days: int = TEST_DAYS, num_threads: int = 2,
                 progress: bool = False, evaluate: bool = True,
                 unshown_per_session: int = UNSHOWN_PER_SESSION,
                 feature_store: "FeatureStore | None" = None) -> dict:
    """Trains (or, with ``init_from``, continues training) the ranker; returns ``meta.json``.

    Samples' as-of features are joined by Feast over ``feature_store``, whose offline sources
    must hold ``events`` (the store ``make features`` built, for the data set's own events);
    without one, the training events are exported into a scratch store first
    (``naviyam.features.training``), which is what a retrain on logged traffic needs.

    Incremental training keeps the checkpoint's normaliser and id indices (new ids are appended),
    so the old weights keep their meaning, and mines hard negatives with the old model.
    """
    if feature_store is not None:
        return _train_ranker(settings, catalog, events, out_dir, init_from, holdout_days=holdout_days,
                             num_threads=num_threads, progress=progress, evaluate=evaluate,
                             unshown_per_session=unshown_per_session, store=feature_store,
                             store_kind="given")

    train_events, _, _ = _training_window(events, holdout_days)
    if train_events.empty:
        raise ValueError("no training events before the held-out window")
    with tempfile.TemporaryDirectory(prefix="naviyam-training-features-") as scratch:
        store = training_store(settings, catalog, train_events, Path(scratch))
        return _train_ranker(settings, catalog, events, out_dir, init_from, holdout_days=holdout_days,
                             num_threads=num_threads, progress=progress, evaluate=evaluate,
                             unshown_per_session=unshown_per_session, store=store, store_kind="scratch")


def _train_ranker(settings: Settings, catalog: Catalog, events: pd.DataFrame, out_dir: Path,
                  init_from: Path | None, *, holdout_days: int, num_threads: int, progress: bool,
                  evaluate: bool, unshown_per_session: int, store: "FeatureStore", store_kind: str) -> dict:
    started = time.perf_counter()
    rs = settings.ranking
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(rs.seed)
    train_events, test_events, cutoff = _training_window(events, holdout_days)
    if train_events.empty:
        raise ValueError("no training events before the held-out window")

    with _torch_threads(num_threads):
        history = FeatureHistory(catalog, train_events, cutoff)
        samples = label_events(train_events)
        if unshown_per_session > 0:
            extra = unshown_negatives(samples, catalog.shops["school_id"], catalog.users["school_id"],
                                      unshown_per_session, rs.seed)
            samples = pd.concat([samples, extra], ignore_index=True)

        if init_from is None:
            chosen = balance(samples, rs.negative_ratio, rs.seed)
            raw = sample_raw_wide(settings, catalog, chosen, store)
            space = FeatureSpace.fit(train_events)
            normaliser = Normaliser.fit(raw)
            model = WideAndDeep(WideDeepConfig(wide_dim=WIDE_DIM, n_users=space.n_users,
                                               n_shops=space.n_shops, n_categories=space.n_categories))
        else:
            prev_model, prev_space, normaliser = load_checkpoint(init_from)
            raw_all = sample_raw_wide(settings, catalog, samples, store)
            # Hard negatives from the model being replaced: what it wrongly loved (score > 0.8).
            prev_scores = predict(prev_model, sample_inputs(prev_space, normaliser, raw_all, samples, catalog))
            samples = mark_hard_negatives(samples, prev_scores)
            chosen = balance(samples, rs.negative_ratio, rs.seed)
            raw = raw_all[chosen.index.to_numpy()]
            space = prev_space.extend(train_events)
            model = prev_model.grow_vocab(space.n_users, space.n_shops)

        inputs = sample_inputs(space, normaliser, raw, chosen, catalog)
        labels = chosen["label"].to_numpy(dtype=np.float32)
        weights = chosen["weight"].to_numpy(dtype=np.float32)
        n_hard = int((chosen["kind"] == "hard_negative").sum())
        log.info("training on %d samples (%d positive, %d hard negative), wide dim %d",
                 len(chosen), int(labels.sum()), n_hard, WIDE_DIM)
        losses = fit(model, inputs, labels, weights, epochs=rs.epochs, batch_size=rs.batch_size,
                     lr=rs.learning_rate, seed=rs.seed, progress=progress)
        train_loss = _weighted_bce(predict(model, inputs), labels, weights)

        features = RankingFeatures(space, normaliser, history.snapshot())
        features.save(out_dir / FEATURES_DIR)
        onnx_path = export_onnx(model, out_dir / MODEL_FILE)
        trained_at = datetime.now(timezone.utc)
        version = f"wide_deep_{trained_at:%Y%m%d%H%M}_{hashlib.sha1(onnx_path.read_bytes()).hexdigest()[:8]}"
        save_checkpoint(out_dir / CHECKPOINT_FILE, model, features, {"version": version})

    meta = {
        "version": version,
        "trained_at": trained_at.isoformat(timespec="seconds"),
        "train_window": {"start": history.start.isoformat(), "end": cutoff.isoformat()},
        "holdout_days": holdout_days,
        "n_train": int(len(chosen)),
        "n_positive": int(labels.sum()),
        "n_negative": int(len(chosen) - labels.sum()),
        "n_hard_negative": n_hard,
        "n_unshown_negative": int((chosen["kind"] == "unshown").sum()),
        "n_users": space.n_users - 1,
        "n_shops": space.n_shops - 1,
        "wide_dim": WIDE_DIM,
        "epochs": rs.epochs,
        "losses": losses,
        "train_weighted_bce": train_loss,
        "init_from": str(init_from) if init_from is not None else None,
        "feature_store": store_kind,  # "given" (the built store) or "scratch" (the training events')
        "train_seconds": round(time.perf_counter() - started, 2),
        "metrics": {},
    }
    _write_meta(out_dir, meta)
    if evaluate and not test_events.empty:
        meta["metrics"] = evaluate_ranker(settings, catalog, events, out_dir, holdout_days=holdout_days)
        _write_meta(out_dir, meta)
    log.info("ranker %s trained in %.1fs: %s", version, meta["train_seconds"], meta["metrics"])
    return meta


def _write_meta(out_dir: Path, meta: dict) -> None:
    (out_dir / META_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")
