"""Ranking: which papers each reader gets (trending, lexical and semantic relevance,
profiles, candidates, selection, reasons; ``ranker.py`` puts them together)."""
