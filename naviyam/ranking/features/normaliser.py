"""``Normaliser``: z-scores of the numeric wide columns, fitted on training rows."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from naviyam.ranking.features.layout import NORMALISED_CLIP, NUMERIC_FEATURES


@dataclass(frozen=True)
class Normaliser:
    """Z-score for the numeric wide columns (binary and cross columns stay 0/1)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def fit(cls, raw_wide: np.ndarray) -> "Normaliser":
        numeric = raw_wide[:, : len(NUMERIC_FEATURES)].astype(np.float64)
        std = numeric.std(axis=0)
        return cls(mean=tuple(numeric.mean(axis=0).tolist()),
                   std=tuple(np.where(std > 1e-6, std, 1.0).tolist()))

    def transform(self, raw_wide: np.ndarray) -> np.ndarray:
        out = raw_wide.astype(np.float32, copy=True)
        n = len(NUMERIC_FEATURES)
        z = (out[:, :n] - np.asarray(self.mean, dtype=np.float32)) / np.asarray(self.std, dtype=np.float32)
        out[:, :n] = np.clip(z, -NORMALISED_CLIP, NORMALISED_CLIP)
        return out

    def to_dict(self) -> dict:
        return {"columns": list(NUMERIC_FEATURES), "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, raw: Mapping) -> "Normaliser":
        if list(raw["columns"]) != list(NUMERIC_FEATURES):
            raise ValueError("normaliser was fitted on a different numeric feature layout")
        return cls(mean=tuple(raw["mean"]), std=tuple(raw["std"]))
