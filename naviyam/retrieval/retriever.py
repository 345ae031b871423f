"""Step 5A: hybrid (dense + BM25) shop retrieval under hard filters.

``search`` flow:
1. ``shop_mask`` decides which shops may be returned at all (the same hard filters every other
   step uses); nothing outside it can come back, however well it matches the text.
2. Dense candidates come from FAISS restricted to the allowed ids; lexical candidates are the
   allowed shops with the best BM25 scores.
3. On the union, both scores are min-max normalised per query and mixed with the configured
   weights. Raw e5 cosines sit in a narrow 0.8-0.9 band, so only their order within this query
   means anything; min-max turns that order into a usable 0-1 spread.
"""
from __future__ import annotations

import functools

import hashlib
import json
import logging
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from naviyam.artifacts import read_meta
from naviyam.config import RetrievalSettings
from naviyam.data.catalog import Catalog
from naviyam.filtering import shop_mask
from naviyam.retrieval.bm25_index import BM25Index
from naviyam.retrieval.documents import Tokenizer, dense_text, shop_document, snippet
from naviyam.retrieval.embedder import Embedder
from naviyam.retrieval.vector_index import VectorIndex
from naviyam.schemas import RetrievalHit, SearchFilters

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
META_FILE = "meta.json"
VECTORS_FILE = "vectors.faiss"
BM25_DIR = "bm25"
DOCUMENTS_FILE = "documents.jsonl"

# Each retriever proposes this many candidates per top-k slot before fusion, so a shop that is
# second-best on both signals is not lost to one that is best on only one.
POOL_FACTOR = 4
MIN_POOL = 50


class RetrievalIndexError(RuntimeError):
    """A saved index does not fit the catalog or embedder it is loaded with."""


def catalog_documents(catalog: Catalog) -> tuple[list[str], list[str], list[str]]:
    """(shop_ids, full documents, dense texts) in ``catalog.shops`` row order."""
    schools = catalog.schools
    school_names = dict(zip(schools["school_id"], schools["name"])) if {"school_id", "name"} <= set(schools) else {}
    shop_ids, documents, dense_texts = [], [], []
    for row in catalog.shops.to_dict("records"):
        menus = catalog.menus_of(row["shop_id"])
        shop_ids.append(str(row["shop_id"]))
        documents.append(shop_document(row, menus, school_names.get(row["school_id"])))
        dense_texts.append(dense_text(row, menus))
    return shop_ids, documents, dense_texts


def _minmax(values: np.ndarray) -> np.ndarray:
    """Scale to 0..1 over this query's candidates. A flat signal carries no preference: it maps
    to 1 when positive (all equally good) and 0 when zero (e.g. no BM25 term matched)."""
    values = values.astype(np.float64)
    if values.size == 0:
        return values
    low, high = float(values.min()), float(values.max())
    if high - low <= 1e-9:
        return np.full(values.shape, 1.0 if high > 0 else 0.0)
    return (values - low) / (high - low)


def _fingerprint(model: str, shop_ids: list[str], *texts: list[str]) -> str:
    digest = hashlib.sha256(model.encode())
    for row in zip(shop_ids, *texts, strict=True):
        for part in row:
            digest.update(b"\0" + part.encode())
    return digest.hexdigest()[:12]


class Retriever:
    """Hybrid retriever over one catalog; build once, then ``search`` per request (thread-safe
    for concurrent searches: nothing is mutated after construction)."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        embedder: Embedder,
        settings: RetrievalSettings,
        tokenizer: Tokenizer,
        shop_ids: list[str],
        documents: list[str],
        dense_texts: list[str],
        vectors: VectorIndex,
        bm25: BM25Index,
        meta: dict,
    ) -> None:
        if not (len(shop_ids) == len(documents) == vectors.n_docs == bm25.n_docs):
            raise RetrievalIndexError("vector index, BM25 index and documents disagree on the number of shops")
        self._catalog = catalog
        self._embedder = embedder
        self._settings = settings
        self._tokenizer = tokenizer
        self._shop_ids = shop_ids
        self._documents = documents
        self._dense_texts = dense_texts
        self._vectors = vectors
        self._bm25 = bm25
        self._meta = meta
        # Children ask the same things in the same words ("급식카드 치킨" after NLU normalises them),
        # and a query embedding is most of a search's CPU: remember recent ones (read-only vectors).
        self._query_vector = functools.lru_cache(maxsize=settings.query_cache_size)(self._embed_query)
        self._doc_of_shop = {shop_id: i for i, shop_id in enumerate(shop_ids)}
        # Catalog row -> doc id, so a shop_mask (row-aligned) selects doc ids directly.
        catalog_ids = catalog.shops["shop_id"].astype(str).tolist()
        missing = [s for s in catalog_ids if s not in self._doc_of_shop]
        if missing or len(catalog_ids) != len(shop_ids):
            raise RetrievalIndexError(
                f"retrieval index does not match the catalog ({len(shop_ids)} indexed shops, "
                f"{len(catalog_ids)} in catalog, {len(missing)} not indexed); rebuild the index"
            )
        self._doc_of_row = np.array([self._doc_of_shop[s] for s in catalog_ids], dtype=np.int64)

    # ----------------------------------------------------------------- build / persist
    @classmethod
    def build(
        cls, catalog: Catalog, embedder: Embedder, settings: RetrievalSettings, tokenizer: Tokenizer | None = None
    ) -> "Retriever":
        started = time.perf_counter()
        tokenizer = tokenizer or Tokenizer()
        shop_ids, documents, dense_texts = catalog_documents(catalog)
        if not shop_ids:
            raise RetrievalIndexError("the catalog has no shops to index")
        t0 = time.perf_counter()
        # Shops of one category often share their main menus, hence their dense text (~30% of
        # the generated catalog): embed each distinct text once.
        unique = list(dict.fromkeys(dense_texts))
        row_of = {text: i for i, text in enumerate(unique)}
        embeddings = embedder.embed_passages(unique)[[row_of[t] for t in dense_texts]]
        embed_seconds = time.perf_counter() - t0
        vectors = VectorIndex.build(embeddings, settings.ivf_threshold)
        bm25 = BM25Index.build(tokenizer.tokenize_many(documents))
        build_seconds = time.perf_counter() - started
        meta = {
            "format": FORMAT_VERSION,
            # Same data, embedder and index type -> same version, so a rebuild is recognisable.
            "version": "rag-" + _fingerprint(f"{embedder.name}|{vectors.kind}", shop_ids, dense_texts, documents),
            "embedder": embedder.name,
            "dim": int(embedder.dim),
            "n_docs": len(shop_ids),
            "embedded_texts": len(unique),
            "index_type": vectors.kind,
            "nlist": vectors.nlist,
            "nprobe": vectors.nprobe,
            "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "build_seconds": round(build_seconds, 3),
            "embed_seconds": round(embed_seconds, 3),
        }
        logger.info("built retriever %s: %d shops, %s index, embedding %.1fs, total %.1fs",
                    meta["version"], len(shop_ids), vectors.kind, embed_seconds, build_seconds)
        return cls(catalog=catalog, embedder=embedder, settings=settings, tokenizer=tokenizer,
                   shop_ids=shop_ids, documents=documents, dense_texts=dense_texts,
                   vectors=vectors, bm25=bm25, meta=meta)

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self._vectors.save(directory / VECTORS_FILE)
        self._bm25.save(directory / BM25_DIR)
        with open(directory / DOCUMENTS_FILE, "w", encoding="utf-8") as fh:
            for shop_id, text, dense in zip(self._shop_ids, self._documents, self._dense_texts):
                fh.write(json.dumps({"shop_id": shop_id, "text": text, "dense_text": dense}, ensure_ascii=False) + "\n")
        # Written last: a directory without meta.json is an interrupted save and will not load.
        (directory / META_FILE).write_text(json.dumps(self._meta, ensure_ascii=False, indent=2), encoding="utf-8")
        logger.info("saved retriever %s to %s", self.version, directory)

    @classmethod
    def load(
        cls,
        directory: str | Path,
        catalog: Catalog,
        embedder: Embedder,
        settings: RetrievalSettings,
        tokenizer: Tokenizer | None = None,
    ) -> "Retriever":
        directory = Path(directory)
        meta = read_meta(directory, what="retrieval index", format_version=FORMAT_VERSION,
                         format_error=RetrievalIndexError, meta_file=META_FILE)
        if meta["embedder"] != embedder.name or int(meta["dim"]) != embedder.dim:
            # Vectors from another model live in another space: searching them would be noise.
            raise RetrievalIndexError(
                f"retrieval index was built with {meta['embedder']} (dim {meta['dim']}), "
                f"but the configured embedder is {embedder.name} (dim {embedder.dim}); rebuild the index"
            )
        shop_ids, documents, dense_texts = [], [], []
        with open(directory / DOCUMENTS_FILE, encoding="utf-8") as fh:
            for line in fh:
                record = json.loads(line)
                shop_ids.append(record["shop_id"])
                documents.append(record["text"])
                dense_texts.append(record["dense_text"])
        retriever = cls(
            catalog=catalog, embedder=embedder, settings=settings, tokenizer=tokenizer or Tokenizer(),
            shop_ids=shop_ids, documents=documents, dense_texts=dense_texts,
            vectors=VectorIndex.load(directory / VECTORS_FILE, nprobe=meta.get("nprobe")),
            bm25=BM25Index.load(directory / BM25_DIR), meta=meta,
        )
        retriever._warn_if_stale()
        logger.info("loaded retriever %s (%d shops, %s) from %s",
                    retriever.version, len(shop_ids), meta["index_type"], directory)
        return retriever

    def _warn_if_stale(self) -> None:
        """Same shops but changed menus/prices: results still obey the filters (they read the
        live catalog), only the text match is dated, so warn rather than refuse."""
        shop_ids, documents, dense_texts = catalog_documents(self._catalog)
        fresh = [documents[i] == self._documents[self._doc_of_shop[s]]
                 and dense_texts[i] == self._dense_texts[self._doc_of_shop[s]]
                 for i, s in enumerate(shop_ids)]
        if not all(fresh):
            logger.warning("retrieval index %s is stale for %d shops (catalog changed since build); rebuild it",
                           self.version, fresh.count(False))

    # ----------------------------------------------------------------- queries
    @property
    def version(self) -> str:
        return str(self._meta["version"])

    @property
    def meta(self) -> dict:
        return dict(self._meta)

    def get_document(self, shop_id: str) -> str:
        """The indexed text of a shop (KeyError for an unknown id)."""
        return self._documents[self._doc_of_shop[shop_id]]

    def _embed_query(self, query: str) -> np.ndarray:
        vec = self._embedder.embed_queries([query])[0]
        vec.setflags(write=False)
        return vec

    def search(
        self,
        query: str,
        filters: SearchFilters,
        top_k: int | None = None,
        origin: tuple[float, float] | None = None,
    ) -> list[RetrievalHit]:
        """Best shops for ``query`` among those passing ``filters``, best first.

        ``rag_score`` is the 0..1 hybrid score (comparable within one query only);
        ``dense_score`` is the raw cosine and ``bm25_score`` the raw BM25 score.
        An empty query or no shop passing the filters gives [].
        """
        k = self._settings.top_k if top_k is None else top_k
        if k <= 0 or not query.strip():
            return []
        mask = shop_mask(self._catalog, filters, origin)
        allowed = np.sort(self._doc_of_row[mask])
        if allowed.size == 0:
            return []
        restricted = allowed.size < len(self._shop_ids)
        pool = min(int(allowed.size), max(POOL_FACTOR * k, MIN_POOL))

        query_tokens = self._tokenizer.tokenize(query)
        qvec = self._query_vector(query)
        _, dense_ids = self._vectors.search(qvec, pool, allowed if restricted else None)
        bm25_all = self._bm25.scores(query_tokens)
        lexical_ids = allowed[bm25_all[allowed] > 0]
        if lexical_ids.size > pool:
            lexical_ids = lexical_ids[np.argpartition(-bm25_all[lexical_ids], pool - 1)[:pool]]

        candidates = np.union1d(dense_ids, lexical_ids)
        # Belt and braces: whatever an index returns, only allowed shops survive.
        candidates = candidates[np.isin(candidates, allowed, assume_unique=True)]
        if candidates.size == 0:
            return []
        dense = self._vectors.scores_for(qvec, candidates)
        lexical = bm25_all[candidates]
        weight_sum = (self._settings.dense_weight + self._settings.bm25_weight) or 1.0
        hybrid = (self._settings.dense_weight * _minmax(dense) + self._settings.bm25_weight * _minmax(lexical)) / weight_sum
        # Ties (e.g. identical shop texts) break on doc id so results are deterministic.
        order = np.lexsort((candidates, -hybrid))[:k]
        return [
            RetrievalHit(
                shop_id=self._shop_ids[doc],
                rag_score=round(float(hybrid[i]), 6),
                dense_score=round(float(dense[i]), 6),
                bm25_score=round(float(lexical[i]), 6),
                matched_content=snippet(self._documents[doc], query_tokens),
            )
            for i, doc in ((int(i), int(candidates[i])) for i in order)
        ]
