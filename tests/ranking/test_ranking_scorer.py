"""The onnxruntime scorer: no torch at serving time, new users, ranking and latency."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime

import numpy as np

from naviyam.ranking.scorer import OnnxRanker
from naviyam.schemas import RequestContext, TimeSlot, UserProfile


def _ctx(catalog, school_id, slot=TimeSlot.AFTER_SCHOOL, when=datetime(2026, 11, 2, 16, 10)):
    lat, lon = catalog.school_location(school_id)
    return RequestContext(now=when, time_slot=slot, origin_lat=lat, origin_lon=lon, school_id=school_id)


def test_scorer_never_imports_torch(ranking_data, trained):
    _, catalog, _ = ranking_data
    model_dir, _ = trained
    user_id = catalog.users["user_id"].iloc[0]
    code = f"""
import sys, json
from datetime import datetime
from pathlib import Path
from naviyam.data.catalog import Catalog
from naviyam.ranking.scorer import OnnxRanker
from naviyam.schemas import RequestContext, TimeSlot
catalog = Catalog.load(Path({str(ranking_data[0].data_dir)!r}))
ranker = OnnxRanker.load(Path({str(model_dir)!r}))
user = catalog.user({user_id!r})
lat, lon = catalog.school_location(user.school_id)
ctx = RequestContext(now=datetime(2026, 11, 2, 16), time_slot=TimeSlot.AFTER_SCHOOL, origin_lat=lat, origin_lon=lon)
scores = ranker.score(user, catalog.shops["shop_id"].tolist()[:30], ctx)
print(json.dumps({{"torch": "torch" in sys.modules, "n": len(scores)}}))
"""
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"torch": False, "n": 30}


def test_score_rank_and_version(ranking_data, trained):
    _, catalog, _ = ranking_data
    model_dir, meta = trained
    ranker = OnnxRanker.load(model_dir)
    assert ranker.version == meta["version"]
    user = catalog.user(catalog.users["user_id"].iloc[1])
    shops = catalog.shops[catalog.shops["school_id"] == user.school_id]["shop_id"].tolist()[:40]
    scores = ranker.score(user, shops, _ctx(catalog, user.school_id))
    assert scores.shape == (len(shops),) and ((scores >= 0) & (scores <= 1)).all()
    ranked = ranker.rank(user, shops, _ctx(catalog, user.school_id))
    assert [s for s, _ in ranked] == [shops[i] for i in np.argsort(-scores, kind="stable")]
    assert [v for _, v in ranked] == sorted((v for _, v in ranked), reverse=True)
    assert len(ranker.rank(user, shops, _ctx(catalog, user.school_id), top_k=5)) == 5
    assert ranker.score(user, [], _ctx(catalog, user.school_id)).shape == (0,)
    # personalised: two different children get different orders over the same shops
    other = catalog.user(catalog.users[catalog.users["school_id"] == user.school_id]["user_id"].iloc[-1])
    assert not np.allclose(scores, ranker.score(other, shops, _ctx(catalog, user.school_id)))
    # context matters: the same child at night vs after school
    night = ranker.score(user, shops, _ctx(catalog, user.school_id, TimeSlot.NIGHT, datetime(2026, 11, 2, 22)))
    assert not np.allclose(scores, night)


def test_new_and_unknown_users_are_scored(ranking_data, trained):
    _, catalog, _ = ranking_data
    model_dir, _ = trained
    ranker = OnnxRanker.load(model_dir)
    school = catalog.schools["school_id"].iloc[0]
    shops = catalog.shops[catalog.shops["school_id"] == school]["shop_id"].tolist()[:30]
    newcomer = UserProfile(user_id="brand_new_kid", age=10, school_id=school, is_new=True,
                           preferred_categories=["분식"], allergies=["우유"])
    scores = ranker.score(newcomer, shops, _ctx(catalog, school))
    assert np.isfinite(scores).all() and scores.shape == (30,)
    inputs = ranker.features.build_inputs([newcomer], shops, _ctx(catalog, school))
    assert (inputs["user_idx"] == 0).all()
    # a known child flagged as new is scored through the same "unknown" row
    known = catalog.user(catalog.users["user_id"].iloc[0]).model_copy(update={"is_new": True})
    assert (ranker.features.build_inputs([known], shops, _ctx(catalog, school))["user_idx"] == 0).all()


