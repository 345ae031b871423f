"""Which shops lie within a radius of a point, without measuring the distance to every shop.

A child's search is always bounded by a walk (a few km), while a national catalog spans the
country: a KD-tree over the shops' points on the unit sphere turns "every shop within r km" into
a ball query that touches only the nearby shops. Points are 3-D unit vectors, so the straight-line
(chord) distance the tree measures is a monotone function of the great-circle distance; the ball
is taken a hair wider than the exact chord and the candidates are then checked with the same
``haversine_km`` every other step uses, so a shop is "within r" here exactly when it is there.
"""
from __future__ import annotations

import numpy as np

EARTH_RADIUS_KM = 6371.0   # the radius haversine_km uses
# Ball slack, relative: the tree's float chord vs the haversine formula may differ in the last
# bits, and a candidate too many is removed by the exact check, a candidate too few would be lost.
_SLACK = 1e-7
# Below this many points the tree is not built: measuring every point is as cheap (2,400 shops:
# ~0.1 ms a query brute force vs ~0.04 ms through the tree, 24,000: 0.8 vs 0.06 ms), and a
# one-shot `naviyam chat` is spared importing scipy.spatial (~0.2 s).
TREE_MIN_POINTS = 5_000


def haversine_km(lat1, lon1, lat2, lon2):
    """Great-circle distance in km; works on scalars and numpy arrays."""
    lat1, lon1, lat2, lon2 = map(np.radians, (lat1, lon1, lat2, lon2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return EARTH_RADIUS_KM * 2 * np.arcsin(np.sqrt(a))


def _unit_xyz(lat, lon) -> np.ndarray:
    lat, lon = np.radians(np.asarray(lat, dtype=np.float64)), np.radians(np.asarray(lon, dtype=np.float64))
    cos_lat = np.cos(lat)
    return np.stack([cos_lat * np.cos(lon), cos_lat * np.sin(lon), np.sin(lat)], axis=-1)


def chord_of_km(km: float) -> float:
    """Chord on the unit sphere of a great-circle distance of ``km``."""
    return 2.0 * float(np.sin(min(km / EARTH_RADIUS_KM, np.pi) / 2.0))


class PointIndex:
    """Read-only spatial index over fixed points (rows of a table); thread-safe queries."""

    def __init__(self, lat: np.ndarray, lon: np.ndarray) -> None:
        self._lat = np.asarray(lat, dtype=np.float64)
        self._lon = np.asarray(lon, dtype=np.float64)
        self._tree = None
        if len(self._lat) >= TREE_MIN_POINTS:
            from scipy.spatial import cKDTree   # deferred: only large catalogs pay for the import

            self._tree = cKDTree(_unit_xyz(self._lat, self._lon))

    def __len__(self) -> int:
        return len(self._lat)

    def candidates(self, lat: float, lon: float, km: float) -> np.ndarray:
        """Rows possibly within ``km`` (a superset, ascending); cheap, no exact distance."""
        if km < 0 or not len(self._lat):
            return np.zeros(0, dtype=np.int64)
        if self._tree is None:
            return np.arange(len(self._lat), dtype=np.int64)
        radius = chord_of_km(km) * (1 + _SLACK) + 1e-12
        rows = self._tree.query_ball_point(_unit_xyz(lat, lon), radius, return_sorted=True)
        return np.asarray(rows, dtype=np.int64)

    def within(self, lat: float, lon: float, km: float) -> tuple[np.ndarray, np.ndarray]:
        """(rows in ascending order, their great-circle km) of the points at most ``km`` away."""
        rows = self.candidates(lat, lon, km)
        dist = haversine_km(lat, lon, self._lat[rows], self._lon[rows])
        keep = dist <= km
        return rows[keep], dist[keep]
