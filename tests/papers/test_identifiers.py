"""One canonical id per work."""

from __future__ import annotations

from digest.papers.identifiers import canonical_id, normalise_doi, parse_arxiv_id


def test_arxiv_ids_in_every_shape_sources_write_them() -> None:
    assert parse_arxiv_id("oai:arXiv.org:2411.17700v2") == ("2411.17700", 2)
    assert parse_arxiv_id("https://arxiv.org/abs/2401.01234") == ("2401.01234", None)
    assert parse_arxiv_id("arXiv:0704.0001v1") == ("0704.0001", 1)
    assert parse_arxiv_id("http://arxiv.org/abs/HEP-PH/0601001v3") == ("hep-ph/0601001", 3)
    assert parse_arxiv_id("math.AG/0309136") == ("math.AG/0309136", None)


def test_id_shaped_numbers_elsewhere_are_not_papers() -> None:
    assert parse_arxiv_id("https://blog.example.org/news/1234567") is None
    assert parse_arxiv_id("version 1.2345 of the tool") is None
    # A coincidence first does not hide the real id after it.
    assert parse_arxiv_id("posts/2024111 then hep-th/9901001") == ("hep-th/9901001", None)


def test_canonical_ids_prefer_arxiv_then_doi_then_a_stable_hash() -> None:
    assert canonical_id(arxiv_id="2411.17700", doi="10.1/x") == "arxiv:2411.17700"
    assert canonical_id(doi=normalise_doi("https://doi.org/10.1145/ABC.")) == "doi:10.1145/abc"
    one = canonical_id(fallback="https://example.org/p/1")
    assert one is not None and one.startswith("url:")
    assert one == canonical_id(fallback="https://example.org/p/1")
    assert canonical_id() is None
