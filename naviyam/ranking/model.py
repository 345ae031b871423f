"""The Wide&Deep ranking network (step 6).

wide:  Linear(W, 1) over the cross-product / normalised features (memorisation)
deep:  [user_emb 64 | shop_emb 64 | category_emb 16] = 144 -> 128 -> 64 -> 32 -> 1 (generalisation)
score: sigmoid(wide_logit + deep_logit)
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class WideDeepConfig:
    wide_dim: int
    n_users: int        # vocabulary sizes including row 0 (unknown)
    n_shops: int
    n_categories: int
    user_dim: int = 64
    shop_dim: int = 64
    category_dim: int = 16
    hidden: tuple[int, ...] = (128, 64, 32)
    dropout: float = 0.3

    def to_dict(self) -> dict:
        out = asdict(self)
        out["hidden"] = list(self.hidden)
        return out

    @classmethod
    def from_dict(cls, raw: dict) -> "WideDeepConfig":
        raw = dict(raw)
        raw["hidden"] = tuple(raw.get("hidden", (128, 64, 32)))
        return cls(**raw)


class WideAndDeep(nn.Module):
    def __init__(self, config: WideDeepConfig) -> None:
        super().__init__()
        self.config = config
        self.wide = nn.Linear(config.wide_dim, 1)
        self.user_emb = nn.Embedding(config.n_users, config.user_dim)
        self.shop_emb = nn.Embedding(config.n_shops, config.shop_dim)
        self.category_emb = nn.Embedding(config.n_categories, config.category_dim)
        layers: list[nn.Module] = []
        width = config.user_dim + config.shop_dim + config.category_dim
        for size in config.hidden:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(config.dropout)]
            width = size
        # Dropout after every hidden layer but the last (32 -> 1 head).
        if layers:
            layers.pop()
        self.deep = nn.Sequential(*layers, nn.Linear(width, 1))
        self._init_embeddings()

    def _init_embeddings(self) -> None:
        # Small embeddings keep the deep logit near 0 at the start, so the wide part (which
        # learns fast from strong hand-made features) is not drowned out by random noise.
        for emb in (self.user_emb, self.shop_emb, self.category_emb):
            nn.init.normal_(emb.weight, std=0.01)

    def logits(self, wide: torch.Tensor, user_idx: torch.Tensor, shop_idx: torch.Tensor,
               category_idx: torch.Tensor) -> torch.Tensor:
        deep_in = torch.cat(
            [self.user_emb(user_idx), self.shop_emb(shop_idx), self.category_emb(category_idx)], dim=1)
        return (self.wide(wide) + self.deep(deep_in)).squeeze(-1)

    def forward(self, wide: torch.Tensor, user_idx: torch.Tensor, shop_idx: torch.Tensor,
                category_idx: torch.Tensor) -> torch.Tensor:
        """Scores in [0, 1], shape [N]."""
        return torch.sigmoid(self.logits(wide, user_idx, shop_idx, category_idx))

    @torch.no_grad()
    def grow_vocab(self, n_users: int, n_shops: int) -> "WideAndDeep":
        """A copy with larger user/shop tables (incremental training on new ids); old rows kept."""
        if n_users < self.config.n_users or n_shops < self.config.n_shops:
            raise ValueError("vocabularies can only grow")
        cfg = WideDeepConfig(**{**self.config.to_dict(), "hidden": self.config.hidden,
                                "n_users": n_users, "n_shops": n_shops})
        grown = WideAndDeep(cfg)
        state = self.state_dict()
        for name, old in (("user_emb.weight", self.user_emb.weight), ("shop_emb.weight", self.shop_emb.weight)):
            new = grown.state_dict()[name].clone()
            new[: old.shape[0]] = old
            # New ids start from the "unknown" row: the best guess before any data about them.
            new[old.shape[0]:] = old[0]
            state[name] = new
        grown.load_state_dict(state)
        return grown
