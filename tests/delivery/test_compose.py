"""Composing one reader's digest: the fast path (prepared skeletons, MIME written as bytes)
against the reference (every template rendered per reader, an EmailMessage)."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.parser import BytesParser
from html import unescape

import pytest
from sqlalchemy.orm import Session

from config.settings import Settings
from digest.delivery.compose import DigestComposer, digest_message_id
from digest.mail.bounces import BounceKind
from digest.mail.outgoing import outgoing
from digest.papers.models import Paper
from digest.papers.sources import PaperRecord
from digest.papers.storage import store_papers
from digest.ranking.picks import Pick
from digest.runtime import Runtime
from digest.subscriptions.choices import Frequency
from digest.subscriptions.models import Subscriber
from tests.factories import NOW, make_subscriber
from tests.samples import full_papers, recorded_papers

URL = re.compile(r"https?://[^\s\"<>]+|mailto:[^\s\"<>]+")
DELIVERY_ID = 4321


def parse(data: bytes) -> EmailMessage:
    message = BytesParser(policy=policy.default).parsebytes(data)
    assert isinstance(message, EmailMessage) and not message.defects
    return message


def body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None and not part.defects
    return str(part.get_content())


@pytest.fixture
def composer(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> DigestComposer:
    # Both paths sign their links in the same second: the same tokens.
    monkeypatch.setattr(time, "time", lambda: 1_800_000_000.5)
    return Runtime(
        make_settings(reply_to="Lab help <help@example.org>", feedback_sender_id="lab-digest")
    ).composer


def sample_papers() -> list[Paper]:
    papers = recorded_papers(50)
    papers += [
        Paper(
            id=101,
            canonical_id="x:101",
            title="Ünïcode & <tags> \"quoted\" 'single' — Tëst of a title longer than seventy",
            abstract="Markup <b>kept</b> & ampersands; “curly” ∑ α β " * 8 + "=3D = at the end ",
            links={"abs": "https://example.org/a?x=1&y=2", "hf": "https://hf.co/p/1"},
            authors=["A"],
            published_on=date(2026, 1, 2),
            updated_at=NOW,
        ),
        Paper(
            id=102,
            canonical_id="x:102",
            title="No abstract, no links, one author",
            abstract="",
            links={},
            authors=[],
            author_count=1,
            updated_at=NOW,
        ),
        Paper(
            id=103,
            canonical_id="x:103",
            title=r"Scaling $\alpha$-entmax",
            display_title="Scaling α-entmax to 10⁶ tokens",
            abstract=r"$\mathcal{O}(n)$",
            display_abstract="We show 𝒪(n log n) attention with β → 0. " + "word " * 100,
            links={"hf_search": "https://huggingface.co/papers?q=entmax", "link": "https://x.org"},
            authors=["A", "B"],
            published_on=date(2026, 11, 20),
            updated_at=NOW,
        ),
    ]
    return papers


PAPERS = sample_papers()
BY_ID = {paper.id: paper for paper in PAPERS}


def reader(
    subscriber_id: int,
    email: str,
    interests: str = "diffusion",
    frequency: Frequency = Frequency.DAILY,
) -> Subscriber:
    return Subscriber(
        id=subscriber_id,
        email=email,
        interests=interests,
        frequency=frequency,
        token_version=1 + subscriber_id % 3,
        confirm_nonce=1,
    )


CASES = {
    "one paper": (
        reader(1, "reader@example.org"),
        [(PAPERS[0], "matches: diffusion")],
        "2026-11-21",
    ),
    "five, some without a reason": (
        reader(2, "a.b+c@example.org", "language models, nas"),
        [(PAPERS[k], "" if k % 2 else "trending") for k in range(5)],
        "2026-11-21",
    ),
    "weekly, no interests, markup in text": (
        reader(3, "o'brien&co@example.org", "", Frequency.WEEKLY),
        [(BY_ID[101], "matches: “α & <β>”"), (BY_ID[102], "")],
        "2026-W47",
    ),
    "fifty papers": (
        reader(4, "fifty@example.org", 'α & <β> "quoted"\r\nsecond line'),
        [(paper, f"reason {n} & <x>") for n, paper in enumerate(PAPERS[:50])],
        "2026-11-21",
    ),
    "latex and a long first title": (
        reader(5, "zoë@example.org", "ünïcode"),
        [(BY_ID[103], ""), (BY_ID[101], "r"), (PAPERS[3], "r")],
        "2026-11-22",
    ),
    "international domain": (
        reader(6, "leser@bücher.de", "x"),
        [(BY_ID[102], "only one")],
        "2026-11-21",
    ),
}

# The edition's "Trending today" section, for the cases that have one.
TRENDING = {
    "one paper": [
        (PAPERS[5], "120 upvotes · trending +38 today"),
        (BY_ID[101], ""),
        (PAPERS[6], "3 upvotes & <more>"),
    ],
    "weekly, no interests, markup in text": [(BY_ID[103], "new, not yet voted on")],
    "fifty papers": [(PAPERS[50 + n], f"{n} upvotes") for n in range(3)],
}


def compose_both(composer: DigestComposer, case: str) -> tuple[EmailMessage, EmailMessage, bytes]:
    subscriber, picks, edition = CASES[case]
    chosen = [Pick(paper=paper, reason=reason, upvotes=None) for paper, reason in picks]
    trending = [Pick(paper=p, reason=r, upvotes=None) for p, r in TRENDING.get(case, [])]
    now = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
    fast = composer.compose(
        subscriber, chosen, delivery_id=DELIVERY_ID, edition=edition, now=now, trending=trending
    ).outgoing.data
    reference = composer.reference(
        subscriber, chosen, delivery_id=DELIVERY_ID, edition=edition, now=now, trending=trending
    )
    sent = outgoing(reference, sender=composer.envelope_sender(DELIVERY_ID))
    return parse(fast), parse(sent.data), fast


@pytest.mark.parametrize("case", list(CASES))
def test_the_fast_path_matches_the_reference(composer: DigestComposer, case: str) -> None:
    fast, reference, _ = compose_both(composer, case)

    assert _headers(fast) == _headers(reference)
    for subtype in ("plain", "html"):
        assert body(fast, subtype) == body(reference, subtype)
        assert URL.findall(body(fast, subtype)) == URL.findall(body(reference, subtype))
    assert URL.findall(str(fast["List-Unsubscribe"])) == URL.findall(
        str(reference["List-Unsubscribe"])
    )
    edition = CASES[case][2]
    assert fast["Auto-Submitted"] == "auto-generated"
    assert fast["List-Id"] == "digest <digest.example.org>"
    assert fast["Reply-To"] == "Lab help <help@example.org>"
    assert fast["Feedback-ID"] == f"{edition}:digest:digest:lab-digest"


def test_each_delivery_goes_out_from_its_own_signed_bounce_address(
    composer: DigestComposer,
) -> None:
    subscriber, picks, edition = CASES["one paper"]
    chosen = [Pick(paper=paper, reason=reason, upvotes=None) for paper, reason in picks]

    def sender(delivery_id: int) -> str:
        return composer.compose(
            subscriber, chosen, delivery_id=delivery_id, edition=edition, now=NOW
        ).outgoing.sender

    first, second = sender(DELIVERY_ID), sender(DELIVERY_ID + 1)
    assert first.startswith(f"bounces+d{DELIVERY_ID}-") and first.endswith("@example.org")
    assert second != first and sender(DELIVERY_ID) == first
    # What the reference path is sent from, and what a bounce to it is read back as.
    assert composer.envelope_sender(DELIVERY_ID) == first
    target = composer.bounces.read(first)
    assert target is not None and (target.kind, target.id) == (BounceKind.DELIVERY, DELIVERY_ID)
    # RFC 5321: a local part is at most 64 octets.
    assert len(first.rpartition("@")[0]) <= 64


def test_an_international_address_goes_out_as_smtputf8_and_idna_take_it(
    composer: DigestComposer,
) -> None:
    for case, to in (
        # RFC 6532: a local part beyond ASCII is written in UTF-8 (SMTPUTF8 carries it).
        ("latex and a long first title", b"zo\xc3\xab@example.org"),
        # The email package would write the domain as RFC 2047 encoded words, which no
        # mail system reads as a domain.
        ("international domain", b"leser@xn--bcher-kva.de"),
    ):
        fast, reference, data = compose_both(composer, case)
        assert b"\r\nTo: " + to + b"\r\n" in data
        assert fast["To"] == reference["To"] == to.decode("utf-8")
    subscriber, picks, edition = CASES["latex and a long first title"]
    chosen = [Pick(paper=paper, reason=reason, upvotes=None) for paper, reason in picks]
    composed = composer.compose(
        subscriber, chosen, delivery_id=DELIVERY_ID, edition=edition, now=NOW
    )
    assert composed.outgoing.recipient == "zoë@example.org"
    message = parse(composed.outgoing.data)
    assert message["Subject"].startswith("Scaling α-entmax to 10⁶ tokens + 2 more")
    assert "ünïcode" in body(message, "plain") and "ünïcode" in body(message, "html")


@pytest.mark.parametrize("case", list(CASES))
def test_the_fast_path_is_valid_for_any_smtp_server(composer: DigestComposer, case: str) -> None:
    subscriber, picks, edition = CASES[case]
    chosen = [Pick(paper=paper, reason=reason, upvotes=None) for paper, reason in picks]
    composed = composer.compose(
        subscriber, chosen, delivery_id=DELIVERY_ID, edition=edition, now=NOW
    )
    data = composed.outgoing.data
    headers, _, content = data.partition(b"\r\n\r\n")
    # 7-bit (bar a UTF-8 address, which needs SMTPUTF8 anyway), CRLF line ends only.
    assert content.isascii() and (headers.isascii() or not composed.outgoing.recipient.isascii())
    assert b"\n" not in data.replace(b"\r\n", b"") and b"\r" not in data.replace(b"\r\n", b"")
    assert all(len(line) <= 76 for line in content.split(b"\r\n"))
    assert all(len(line) <= 998 for line in headers.split(b"\r\n"))
    message = parse(data)
    assert [part.get("Content-Transfer-Encoding") for part in message.iter_parts()] == [
        "quoted-printable",
        "quoted-printable",
    ]
    assert composed.outgoing.sender == composer.envelope_sender(DELIVERY_ID)
    assert composed.outgoing.sender.isascii()


def test_the_message_id_is_one_per_reader_and_edition(composer: DigestComposer) -> None:
    subscriber, picks, _ = CASES["one paper"]
    chosen = [Pick(paper=paper, reason=reason, upvotes=None) for paper, reason in picks]

    def message_id(who: Subscriber, edition: str, now: datetime = NOW) -> str:
        return composer.compose(
            who, chosen, delivery_id=DELIVERY_ID, edition=edition, now=now
        ).message_id

    first = message_id(subscriber, "2026-11-21")
    # A re-send, later, with other picks even, carries the first copy's id.
    assert message_id(subscriber, "2026-11-21", NOW + timedelta(hours=3)) == first
    assert (
        composer.compose(
            subscriber, chosen[:1] + chosen, delivery_id=DELIVERY_ID, edition="2026-11-21", now=NOW
        ).message_id
        == first
    )
    assert message_id(subscriber, "2026-11-22") != first
    assert message_id(reader(99, "other@example.org"), "2026-11-21") != first
    assert message_id(subscriber, "2026-W47") not in (first, message_id(subscriber, "2026-11-22"))
    assert first == f"<digest.2026-11-21.1@{composer.site.from_domain}>"
    assert subscriber.email not in first
    assert (
        str(
            composer.reference(
                subscriber, chosen, delivery_id=DELIVERY_ID, edition="2026-11-21", now=NOW
            )["Message-ID"]
        )
        == first
    )
    with pytest.raises(ValueError):
        digest_message_id(edition="2026-11-21>\r\nBcc: x", subscriber_id=1, domain="localhost")


def test_a_paper_changed_since_its_block_was_prepared_is_shown_as_it_is_now(
    composer: DigestComposer,
) -> None:
    subscriber = reader(7, "changes@example.org")
    paper = Paper(
        id=500,
        canonical_id="x:500",
        title="First title",
        abstract="First abstract.",
        links={"abs": "https://example.org/500"},
        authors=[],
        updated_at=NOW,
    )
    composer.compose(
        subscriber,
        [Pick(paper=paper, reason="", upvotes=None)],
        delivery_id=DELIVERY_ID,
        edition="2026-11-21",
        now=NOW,
    )
    paper.title, paper.abstract, paper.updated_at = (
        "Second title",
        "Second abstract.",
        NOW + timedelta(hours=1),
    )

    message = parse(
        composer.compose(
            subscriber,
            [Pick(paper=paper, reason="", upvotes=None)],
            delivery_id=DELIVERY_ID,
            edition="2026-11-21",
            now=NOW,
        ).outgoing.data
    )
    assert message["Subject"].startswith("Second title")
    for subtype in ("plain", "html"):
        assert "Second title" in body(message, subtype) and "Second abstract." in body(
            message, subtype
        )
        assert "First" not in body(message, subtype)


def test_the_subject_names_the_top_paper_the_count_and_the_day_on_both_paths(
    composer: DigestComposer,
) -> None:
    top = Paper(
        id=104,
        canonical_id="x:104",
        title="Über die Skalierung von Diffusions-Transformern: α-Entropie, Ähnlichkeit "
        "und 10⁶ Größenordnungen",
        abstract="Ein Abstract.",
        links={"abs": "https://example.org/104"},
        authors=[],
        updated_at=NOW,
    )
    cases = [
        (
            reader(8, "daily@example.org"),
            [top, *PAPERS[:6]],
            "2026-12-01",
            "Über die Skalierung von Diffusions-Transformern: α-Entropie… + 6 more · 1 Dec",
        ),
        (
            reader(9, "weekly@example.org", frequency=Frequency.WEEKLY),
            [BY_ID[101], BY_ID[102]],
            "2026-W47",
            "Ünïcode & <tags> \"quoted\" 'single' — Tëst of a… + 1 more · week of 16 Nov",
        ),
        # One paper: no "+ 0 more".
        (
            reader(10, "one@example.org"),
            [top],
            "2026-12-01",
            "Über die Skalierung von Diffusions-Transformern: α-Entropie… · 1 Dec",
        ),
    ]
    for subscriber, papers, edition, subject in cases:
        chosen = [Pick(paper=paper, reason="", upvotes=None) for paper in papers]
        fast = composer.compose(
            subscriber, chosen, delivery_id=DELIVERY_ID, edition=edition, now=NOW
        ).outgoing.data
        reference = outgoing(
            composer.reference(
                subscriber, chosen, delivery_id=DELIVERY_ID, edition=edition, now=NOW
            )
        )
        for data in (fast, reference.data):
            assert parse(data)["Subject"] == subject
            # Written in RFC 2047 encoded words, 7-bit: what any mail system can carry.
            raw = BytesParser(policy=policy.compat32).parsebytes(data)["Subject"]
            assert raw.isascii() and "=?utf-8?" in raw
            assert str(make_header(decode_header(raw))) == subject
        assert len(subject) <= 78


def test_readers_see_latex_as_unicode_and_never_as_markup(
    session: Session, settings: Settings
) -> None:
    store_papers(
        session,
        [
            PaperRecord(
                canonical_id="arxiv:2611.00042",
                title=r"Scaling $\alpha$-entmax to $10^6$ tokens",
                abstract=r"We show $\mathcal{O}(n \log n)$ attention with $\beta \to 0$ "
                "in 10^4 GPU hours.",
                links={"abs": "https://arxiv.org/abs/2611.00042"},
            )
        ],
        source="test",
        now=NOW,
    )
    paper = session.query(Paper).one()
    reader = make_subscriber(session)

    composed = Runtime(settings).composer.compose(
        reader,
        [Pick(paper=paper, reason="", upvotes=None)],
        delivery_id=DELIVERY_ID,
        edition="2026-11-21",
        now=NOW,
    )

    message = parse(composed.outgoing.data)
    assert message["Subject"].startswith("Scaling α-entmax to 10⁶ tokens")
    for text in (body(message, "plain"), body(message, "html")):
        assert "α-entmax" in text and "𝒪(n log n)" in text and "β" in text
        assert "10⁶ tokens" in text and "in 10⁴ GPU hours" in text
        assert r"\alpha" not in text and "$" not in text and "^" not in text


def _headers(message: EmailMessage) -> dict[str, str]:
    # Both are multipart/alternative; only the boundary differs.
    assert message.get_content_type() == "multipart/alternative"
    return {name: str(value) for name, value in message.items() if name != "Content-Type"}


HREF = re.compile(r'href="([^"]+)"')


def largest_digest(composer: DigestComposer) -> EmailMessage:
    """Fifty papers (the most a reader may choose), each with a reason and every line,
    and a full trending section after them."""
    reader_ = reader(8, "a.long.address.for.fifty@example.org", "diffusion, language models")
    picks = [
        Pick(paper=paper, reason=f"matches: diffusion and more {n}", upvotes=None)
        for n, paper in enumerate(full_papers(50))
    ]
    trending = [
        Pick(paper=paper, reason=f"{900 + n} upvotes · trending +{n} today", upvotes=None)
        for n, paper in enumerate(PAPERS[:3])
    ]
    return parse(
        composer.compose(
            reader_,
            picks,
            delivery_id=DELIVERY_ID,
            edition="2026-11-21",
            now=NOW,
            trending=trending,
        ).outgoing.data
    )


def test_a_fifty_paper_digest_stays_under_gmails_clipping_with_its_footer_inside(
    composer: DigestComposer,
) -> None:
    html = body(largest_digest(composer), "html")
    assert "Trending today" in html
    # Gmail clips an HTML part above 102 KB, and the footer's links go with the clip.
    assert len(html.encode("utf-8")) <= 90 * 1024
    footer = html[html.index('<div class="footer"') :]
    assert ">Unsubscribe</a>" in footer and ">Preferences</a>" in footer


def test_the_text_part_carries_every_link_and_line_of_the_html_part(
    composer: DigestComposer,
) -> None:
    message = largest_digest(composer)
    html, text = body(message, "html"), body(message, "plain")
    links = {unescape(link) for link in HREF.findall(html)}
    assert links and links <= set(URL.findall(text))
    for paper in full_papers(50):
        assert paper.published_on is not None
        facts = f"Published {paper.published_on:%d %b %Y} · {paper.author_count} authors"
        assert facts in html and facts in text
    assert "Saturday 21 November 2026 · 50 papers" in html
    assert "Saturday 21 November 2026 · 50 papers" in text


def test_the_html_has_dark_mode_styles_and_no_hidden_text(composer: DigestComposer) -> None:
    html = body(largest_digest(composer), "html")
    assert '<meta name="color-scheme" content="light dark">' in html
    assert "@media (prefers-color-scheme: dark)" in html
    # The old preheader: text hidden by display:none, 1 px and the background's colour.
    assert "display:none" not in html.replace(" ", "") and "font-size:1px" not in html


def test_the_trending_section_follows_the_picks_under_its_heading(
    composer: DigestComposer,
) -> None:
    fast, _, _ = compose_both(composer, "one paper")
    for subtype in ("plain", "html"):
        text = html.unescape(body(fast, subtype))
        assert text.count("Trending today") == 1
        # After the reader's own pick, the section's papers in order, with their reasons.
        positions = [text.index(PAPERS[0].shown_title)] + [
            text.index(paper.shown_title) for paper, _ in TRENDING["one paper"]
        ]
        assert positions == sorted(positions) and positions[0] < text.index("Trending today")
        assert "120 upvotes · trending +38 today" in text
    weekly, _, _ = compose_both(composer, "weekly, no interests, markup in text")
    assert "Trending this week" in body(weekly, "plain")
    without, _, _ = compose_both(composer, "five, some without a reason")
    assert "Trending" not in body(without, "plain") + body(without, "html")


def test_dark_mode_and_the_phone_layout_win_over_the_inlined_styles(
    composer: DigestComposer,
) -> None:
    # Inlined styles beat a <style> block's rules unless those say !important.
    html = body(largest_digest(composer), "html")
    head = html[html.index("@media (max-width: 640px)") : html.index("</style>")]
    assert ".body, .wrapper { background-color: #18181b !important; }" in head
    assert "padding: 16px !important" in head
