"""Papers: sources that yield them, canonical ids, text clean-up, storage and ingest runs."""
