"""Ranking: which papers each reader gets (trending, lexical and semantic relevance, selection)."""
