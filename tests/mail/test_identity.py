"""What the mail says about who sends it: List-Id (RFC 2919) and Feedback-ID."""

from __future__ import annotations

from digest.mail.identity import SiteIdentity


def site(name: str, from_address: str = "Digest <digest@example.org>") -> SiteIdentity:
    return SiteIdentity(name=name, base_url="https://example.org", from_address=from_address)


def test_the_list_id_is_the_sites_name_and_one_id_under_its_domain() -> None:
    assert site("digest").digest_list_id == "digest <digest.example.org>"
    assert site("ML papers").digest_list_id == "ML papers <digest.example.org>"
    # A name with specials is quoted, or it would be read as part of the id.
    assert site('Lab "A" <ml>').digest_list_id == '"Lab \\"A\\" <ml>" <digest.example.org>'
    assert (
        site("x", "x <digest@bücher.example>").digest_list_id == "x <digest.xn--bcher-kva.example>"
    )


def test_the_feedback_id_ends_with_the_sender_id_and_keeps_four_fields() -> None:
    assert site("d").feedback_id("2026-11-21", "digest") == "2026-11-21:digest:digest:example.org"
    chosen = SiteIdentity(
        name="d", base_url="https://e", from_address="d@e.org", feedback_sender_id="lab"
    )
    assert chosen.feedback_id("a:b", "digest") == "a-b:digest:digest:lab"
