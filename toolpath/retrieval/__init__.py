"""TPTU-v2 API retrieval and demo selection (sentence-transformers + faiss) live here."""
