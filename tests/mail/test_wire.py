"""Messages written as bytes: quoted-printable pieces, headers, addresses, skeletons."""

from __future__ import annotations

import binascii
import random
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser

import pytest
from jinja2 import Environment
from markupsafe import escape

from digest.mail.message import MESSAGE_POLICY, WIRE_POLICY
from digest.mail.skeleton import Holes
from digest.mail.wire import SOFT_BREAK, alternative, header, quoted_printable, recipient

# Spaces and tabs at line ends, "=", dots, line ends of every kind, beyond ASCII.
ALPHABET = ["a", "b", " ", "\t", "=", ".", "\r", "\n", "\r\n", "é", "·", "𝒪", "%", "_"]


def random_text(rng: random.Random, longest: int = 300) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, longest)))


def crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")


def test_pieces_joined_by_soft_breaks_decode_to_the_joined_text() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        # A piece is read alone: a CR ending one and an LF starting the next would be two
        # line ends (no template piece next to a hole ends with a CR).
        texts = [random_text(rng, 120).rstrip("\r") for _ in range(rng.randint(1, 5))]
        encoded = SOFT_BREAK.join(quoted_printable(text) for text in texts)
        # Line ends as EmailMessage.set_content writes them.
        assert binascii.a2b_qp(encoded).decode("utf-8") == crlf("".join(texts))
        lines = encoded.split(b"\r\n")
        assert encoded.isascii() and b"\n" not in encoded.replace(b"\r\n", b"")
        assert all(len(line) <= 76 for line in lines), encoded


def test_a_piece_leaves_room_for_the_soft_break_that_follows() -> None:
    rng = random.Random(8)
    for _ in range(2000):
        last_line = quoted_printable(random_text(rng)).split(b"\r\n")[-1]
        assert len(last_line) <= 75


def test_an_encoded_space_at_a_line_end_never_makes_a_77_character_line() -> None:
    # binascii.b2a_qp writes this line at 77 characters.
    text = "ééééé aé==a éaéé   é \n"
    assert max(len(line) for line in binascii.b2a_qp(text.encode()).split(b"\n")) == 77
    assert all(len(line) <= 76 for line in quoted_printable(text).split(b"\r\n"))
    assert binascii.a2b_qp(quoted_printable(text)) == crlf(text).encode()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Subject", "Plain ASCII subject + 4 more"),
        ("Subject", "Scaling α-entmax to 10⁶ tokens + 2 more · 21 Nov"),
        ("Subject", "Spaces  twice and a " + "very long word" * 90),
        ("From", "digest <digest@lab.example>"),
        ("From", "Dïgest Lab <digest@lab.example>"),
        ("List-Id", "digest <digest.localhost>"),
        ("List-Id", '"Lab \\"A\\"" <digest.lab.example>'),
        ("Feedback-ID", "2026-11-21:digest:digest:lab.example"),
        ("Reply-To", "Lab hélp <help@lab.example>"),
        ("Date", "Sat, 21 Nov 2026 08:00:00 +0000"),
    ],
)
def test_a_header_is_written_as_the_email_package_writes_it(name: str, value: str) -> None:
    message = EmailMessage(policy=MESSAGE_POLICY)
    message[name] = value
    assert header(name, value) == message.as_bytes(policy=WIRE_POLICY)[:-2]


def test_a_header_value_cannot_carry_a_line_break() -> None:
    with pytest.raises(ValueError):
        header("Subject", "one\r\nBcc: everyone@example.org")
    with pytest.raises(ValueError):
        recipient("reader@example.org\r\nBcc: everyone@example.org")


@pytest.mark.parametrize(
    "address",
    ["reader@example.org", "a.b+c@example.org", "o'brien&co@example.org", '"john doe"@example.org'],
)
def test_an_ascii_address_is_written_as_the_email_package_writes_it(address: str) -> None:
    message = EmailMessage(policy=MESSAGE_POLICY)
    message["To"] = Address(addr_spec=address)
    assert recipient(address) == (address, message.as_bytes(policy=WIRE_POLICY)[:-2])


def test_an_international_domain_is_written_in_idna_for_header_and_envelope() -> None:
    assert recipient("leser@bücher.de") == (
        "leser@xn--bcher-kva.de",
        b"To: leser@xn--bcher-kva.de\r\n",
    )


def test_a_local_part_beyond_ascii_is_utf8_and_needs_smtputf8() -> None:
    envelope, to = recipient("jörg@bücher.de")
    assert envelope == "jörg@xn--bcher-kva.de" and not envelope.isascii()
    assert to == "To: jörg@xn--bcher-kva.de\r\n".encode()


def test_an_alternative_message_parses_back_into_its_parts() -> None:
    text, html = "Hello · world\n" + "x" * 200 + "\n", "<p>Hello · <b>world</b></p>\n"
    data = alternative(
        [header("Subject", "Hi · there"), header("To", "reader@example.org")],
        quoted_printable(text),
        quoted_printable(html),
    )
    message = BytesParser(policy=policy.default).parsebytes(data)
    assert message["Subject"] == "Hi · there" and message["MIME-Version"] == "1.0"
    assert message.get_content_type() == "multipart/alternative" and not message.defects
    plain, rich = message.iter_parts()
    assert plain.get_content() == crlf(text) and rich.get_content() == crlf(html)
    assert all(len(line) <= 76 for line in data.split(b"\r\n")) and data.isascii()


def test_a_part_must_end_its_last_line() -> None:
    with pytest.raises(ValueError, match="line end"):
        alternative([], quoted_printable("no line end"), quoted_printable("<p>x</p>\n"))


def test_a_skeleton_filled_equals_the_template_rendered_for_the_reader() -> None:
    environment = Environment(autoescape=True)
    template = environment.from_string(
        '<p title="{{ name }}">Hi {{ name }} · {{ fixed }}</p>\n<a href="{{ url }}">100%</a>\n'
    )
    holes = Holes()
    skeleton = holes.cut(
        template.render(name=holes["name"], fixed="<same for all>", url=f"/u/{holes['token']}")
    )
    for name, token in [("Ann & <Bob>", "abc.DEF-_1"), ("Zoë", "x" * 90), ("", "t")]:
        filled = skeleton.fill(
            {b"name": quoted_printable(escape(name)), b"token": quoted_printable(token)}
        )
        expected = template.render(name=name, fixed="<same for all>", url=f"/u/{token}")
        assert binascii.a2b_qp(filled).decode() == crlf(expected)


def test_a_marker_a_filter_changed_is_refused() -> None:
    template = Environment().from_string("{{ name|upper }}")
    holes = Holes()
    with pytest.raises(ValueError, match="as they are"):
        holes.cut(template.render(name=holes["name"]))
