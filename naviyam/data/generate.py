"""Seeded, reproducible synthetic data set: the world, the hidden truth and the interaction log.

``build_dataset`` writes the parquet tables described in ``naviyam.data.catalog`` into
``settings.data_dir`` (plus ``truth/``). The same ``settings.seed`` always gives byte-identical
files. Each stage draws from its own seeded stream, so changing one stage (e.g. the event
simulator) does not reshuffle the world.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from naviyam.config import Settings
from naviyam.data.catalog import DataNotBuiltError
from naviyam.data.events import Simulation, simulate, window_start
from naviyam.data.truth import TruthModel
from naviyam.data.world import build_world

log = logging.getLogger(__name__)

_STR, _F64, _I64, _BOOL = pa.string(), pa.float64(), pa.int64(), pa.bool_()
_LIST_STR, _TS = pa.list_(pa.string()), pa.timestamp("ns")

# Exact on-disk layout (see the catalog docstring); list columns stay list<string> even when empty.
SCHEMAS: dict[str, pa.Schema] = {
    "schools": pa.schema([("school_id", _STR), ("name", _STR), ("level", _STR), ("district", _STR),
                          ("address", _STR), ("lat", _F64), ("lon", _F64)]),
    "shops": pa.schema([("shop_id", _STR), ("name", _STR), ("category", _STR), ("school_id", _STR),
                        ("address", _STR), ("district", _STR), ("lat", _F64), ("lon", _F64),
                        ("open_time", _STR), ("close_time", _STR), ("phone", _STR),
                        ("accepts_meal_card", _BOOL), ("is_good_influence_shop", _BOOL), ("rating", _F64),
                        ("view_count", _I64), ("order_count", _I64), ("min_price", _I64),
                        ("avg_price", _I64)]),
    "menus": pa.schema([("menu_id", _STR), ("shop_id", _STR), ("name", _STR), ("price", _I64),
                        ("allergens", _LIST_STR), ("is_signature", _BOOL)]),
    "users": pa.schema([("user_id", _STR), ("age", _I64), ("school_id", _STR),
                        ("preferred_categories", _LIST_STR), ("allergies", _LIST_STR),
                        ("has_meal_card", _BOOL), ("meal_card_name", _STR), ("meal_card_balance", _I64),
                        ("per_meal_allowance", _I64), ("created_at", _TS)]),
    "events": pa.schema([("event_id", _STR), ("user_id", _STR), ("shop_id", _STR), ("event_type", _STR),
                         ("timestamp", _TS), ("session_id", _STR), ("position", _I64), ("time_slot", _STR),
                         ("rating", _F64), ("order_amount", _I64)]),
}

# Independent random streams per stage (spawned from settings.seed).
_STREAMS = {"world": 1, "truth": 2, "ratings": 3, "events": 4}


def _rng(seed: int, stage: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, _STREAMS[stage]]))


def build_dataset(settings: Settings, *, n_schools: int | None = None, n_shops: int | None = None,
                  n_users: int | None = None, days: int = 91) -> dict:
    """Generate everything into ``settings.data_dir``; returns summary counts (and timing)."""
    if days < 1:
        raise ValueError("days must be >= 1")
    n_schools = n_schools or settings.n_schools
    n_shops = n_shops or settings.n_shops
    n_users = n_users or settings.n_users
    started = time.perf_counter()
    seed = settings.seed

    world, affinity = build_world(n_schools, n_shops, n_users, window_start(days), _rng(seed, "world"))
    truth = TruthModel.sample(world.users, world.schools, world.shops, world.menus, affinity, _rng(seed, "truth"))
    world.shops["rating"] = truth.shop_ratings(_rng(seed, "ratings"))
    log.info("world: %d schools, %d shops, %d menus, %d users (%.1fs)", len(world.schools), len(world.shops),
             len(world.menus), len(world.users), time.perf_counter() - started)

    sim = simulate(world, truth, days, _rng(seed, "events"))
    truth = truth.with_bias(sim.bias)
    shops = _with_popularity(world.shops, sim.events)
    log.info("events: %d in %d sessions (%.1fs)", len(sim.events), sim.n_sessions, time.perf_counter() - started)

    out = settings.data_dir
    out.mkdir(parents=True, exist_ok=True)
    tables = {"schools": world.schools, "shops": shops, "menus": world.menus, "users": world.users,
              "events": sim.events}
    for name, frame in tables.items():
        _write(frame, name, out)
    truth.save(out / "truth")

    summary = _summary(tables, sim, out, time.perf_counter() - started)
    log.info("wrote data set to %s: %s", out, {k: v for k, v in summary.items() if k != "data_dir"})
    return summary


def _with_popularity(shops: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """view_count / order_count straight from the log, so popularity agrees with the events."""
    counts = events.groupby(["shop_id", "event_type"]).size().unstack(fill_value=0)
    shops = shops.copy()
    for column, event_type in (("view_count", "view"), ("order_count", "order")):
        per_shop = counts[event_type] if event_type in counts else pd.Series(dtype=np.int64)
        shops[column] = shops["shop_id"].map(per_shop).fillna(0).astype(np.int64)
    return shops[[f.name for f in SCHEMAS["shops"]]]


def _write(frame: pd.DataFrame, name: str, out: Path) -> None:
    schema = SCHEMAS[name]
    table = pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)
    pq.write_table(table, out / f"{name}.parquet")
    log.info("wrote %s.parquet: %d rows", name, len(frame))


def _summary(tables: dict[str, pd.DataFrame], sim: Simulation, out: Path, seconds: float) -> dict:
    by_type = sim.events["event_type"].value_counts().to_dict()
    views = by_type.get("view", 0)
    return {
        **{name: len(frame) for name, frame in tables.items()},
        "sessions": sim.n_sessions,
        "event_types": {k: int(v) for k, v in sorted(by_type.items())},
        "ctr": round(by_type.get("click", 0) / views, 4) if views else 0.0,
        "seconds": round(seconds, 2),
        "data_dir": str(out),
    }


def load_events(data_dir: Path) -> pd.DataFrame:
    """The interaction log (events.parquet), chronologically ordered."""
    path = Path(data_dir) / "events.parquet"
    if not path.exists():
        raise DataNotBuiltError(f"no events in {data_dir}; run `naviyam data build`")
    return pd.read_parquet(path)


def load_truth(data_dir: Path) -> TruthModel:
    """The hidden preference model; load once and call ``.scores`` when scoring many requests."""
    directory = Path(data_dir) / "truth"
    if not (directory / "params.json").exists():
        raise DataNotBuiltError(f"no truth model in {directory}; run `naviyam data build`")
    return TruthModel.load(directory)


def truth_scores(data_dir: Path, user_ids: Sequence[str], shop_ids: Sequence[str], time_slot: str) -> np.ndarray:
    """Hidden utility of each (user_ids[i], shop_ids[i]) pair in ``time_slot`` (evaluation only).

    Higher is better; ``sigmoid(score)`` is the simulated click probability at the top position.
    Raises KeyError for ids not in the generated data set.
    """
    return load_truth(data_dir).scores(user_ids, shop_ids, time_slot)
