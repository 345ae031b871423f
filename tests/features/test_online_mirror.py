"""The online mirror: what Feast's online store serves, kept as a table for a process that ranks
without importing Feast (`naviyam chat`), so it ranks on the same features as the served graph."""
from __future__ import annotations

import numpy as np
import pandas as pd

from naviyam.features.online import FeastFeatureSource, mirror_dir, online_mirror
from naviyam.ranking.features import SHOP_FEATURE_COLUMNS, USER_FEATURE_COLUMNS


def test_build_writes_a_mirror_equal_to_the_online_store(built, store):
    assert built.result["mirror"] == {"users": len(built.catalog.users), "shops": len(built.catalog.shops),
                                      "path": str(mirror_dir(built.settings))}
    mirror, feast = online_mirror(built.settings), FeastFeatureSource(store)
    users = list(built.catalog.users.index[:60]) + ["user_unknown"]
    shops = list(built.catalog.shops.index[:40]) + ["shop_unknown"]
    for ours, theirs, columns in ((mirror.user_features(users), feast.user_features(users), USER_FEATURE_COLUMNS),
                                  (mirror.shop_features(shops), feast.shop_features(shops), SHOP_FEATURE_COLUMNS)):
        assert list(ours.columns) == list(columns)
        pd.testing.assert_frame_equal(ours, theirs, check_dtype=False, check_index_type=False)
        assert ours.iloc[-1].isna().all()  # an id the store does not know: "no history" in both


def test_the_mirror_is_not_the_training_window_snapshot(built, snapshot):
    """Built from every event, as the online store is; a ranker's own snapshot ends at its
    training cutoff, which is why the CLI must not rank on the snapshot when a mirror exists."""
    mirror = online_mirror(built.settings)
    shops = list(built.catalog.shops.index)
    np.testing.assert_allclose(mirror.shop_features(shops)["n_views"].to_numpy(dtype=float),
                               snapshot.shop_features(shops)["n_views"].to_numpy(dtype=float))


def test_no_mirror_where_features_were_never_built(tmp_path):
    from naviyam.config import Settings

    assert online_mirror(Settings(home=tmp_path)) is None
