"""A message written as wire bytes directly, without an ``EmailMessage``.

Building and flattening an ``EmailMessage`` costs milliseconds (header objects, folding,
content managers), most of a digest's cost. A digest always has the same shape, so it
is written here: headers as ``MESSAGE_POLICY`` writes them, a multipart/alternative of a
text and an HTML part, CRLF line ends. Both parts are quoted-printable: 7-bit, lines of
at most 76 characters, which any SMTP server takes (8bit needs 8BITMIME).

Quoted-printable pieces concatenate: pieces encoded apart and joined with a soft line
break (``=`` CRLF, which decoders drop) decode to the pieces' texts joined. So most of a
body can be encoded once and only the per-reader values per message.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Sequence
from email.headerregistry import Address
from email.message import EmailMessage

from digest.mail.addresses import idna_address
from digest.mail.message import MESSAGE_POLICY, WIRE_POLICY

CRLF = b"\r\n"
SOFT_BREAK = b"=" + CRLF
# RFC 2045 allows 76 characters a line; a piece's last line stops one short, for the "="
# of the soft break that joins it to the next.
PIECE_WIDTH = 75
_LINE_END = re.compile(rb"\r\n|\r|\n")

# In quoted-printable text "=" is followed by two hex digits or a line end, never by "_":
# no part can contain this boundary.
BOUNDARY = b"=_digest_alternative"
_MULTIPART = (
    b'MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="' + BOUNDARY + b'"\r\n'
)
_TEXT_PART = (
    b"--" + BOUNDARY + b"\r\n"
    b'Content-Type: text/plain; charset="utf-8"\r\n'
    b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
)
_HTML_PART = (
    b"\r\n--" + BOUNDARY + b"\r\n"
    b'Content-Type: text/html; charset="utf-8"\r\n'
    b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
)
_END = b"\r\n--" + BOUNDARY + b"--\r\n"


def quoted_printable(text: str) -> bytes:
    """``text`` in UTF-8, quoted-printable, with CRLF line ends: a piece to join with others
    by :data:`SOFT_BREAK` (its last line leaves room for the break's "="). Line ends are
    read within the piece: a CR ending one piece and an LF starting the next are two."""
    data = text.encode("utf-8")
    if b"\r" in data or b"\n" in data:
        # As EmailMessage.set_content reads line ends.
        data = _LINE_END.sub(CRLF, data)
        encoded = binascii.b2a_qp(data)
    else:
        # Without a CRLF in its input, b2a_qp breaks soft lines with a bare LF.
        encoded = binascii.b2a_qp(data).replace(b"=\n", SOFT_BREAK)
    if len(encoded) <= PIECE_WIDTH and CRLF not in encoded:
        return encoded
    lines = encoded.split(CRLF)
    if len(lines[-1]) <= PIECE_WIDTH and all(len(line) <= PIECE_WIDTH + 1 for line in lines):
        return encoded
    # b2a_qp can end a line at 77 characters (an encoded space before a line end), and
    # its last line may leave no room for a soft break.
    return _quoted_printable_narrow(data)


def _quoted_printable_narrow(data: bytes) -> bytes:
    out: list[str] = []
    for line in data.split(CRLF):
        current = ""
        last = len(line) - 1
        for index, byte in enumerate(line):
            # Printable ASCII but "="; a space or tab unless it ends the line.
            if (33 <= byte <= 126 and byte != 61) or (byte in (9, 32) and index < last):
                token = chr(byte)
            else:
                token = f"={byte:02X}"
            if len(current) + len(token) > PIECE_WIDTH:
                out.append(current + "=")
                current = ""
            current += token
        out.append(current)
    return "\r\n".join(out).encode("ascii")


_PLAIN_VALUE = re.compile(r"[!-~]+(?: [!-~]+)*")


def header(name: str, value: str) -> bytes:
    """The header line ``name: value`` (CRLF included) as MESSAGE_POLICY writes it."""
    if len(name) + len(value) <= 996 and _PLAIN_VALUE.fullmatch(value):
        # Printable ASCII that fits a line: the email package writes it as it is.
        return f"{name}: {value}\r\n".encode("ascii")
    message = EmailMessage(policy=MESSAGE_POLICY)
    message[name] = value
    return _header_lines(message)


def _header_lines(message: EmailMessage) -> bytes:
    # Headers end with an empty line, and this message has no body.
    return message.as_bytes(policy=WIRE_POLICY)[: -len(CRLF)]


_DOT_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_PLAIN_ADDRESS = re.compile(rf"{_DOT_ATOM}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")


def recipient(address: str) -> tuple[str, bytes]:
    """The envelope recipient (RCPT TO) and the To header line for a reader's address."""
    if _PLAIN_ADDRESS.fullmatch(address):
        return address, b"To: " + address.encode("ascii") + CRLF
    address = idna_address(address)
    if address.isascii():
        message = EmailMessage(policy=MESSAGE_POLICY)
        message["To"] = Address(addr_spec=address)
        return address, _header_lines(message)
    # A local part beyond ASCII has no 7-bit form: RFC 6532 writes it in UTF-8, and only
    # an SMTPUTF8 session can carry it (the recipient tells the sender so).
    return address, b"To: " + address.encode("utf-8") + CRLF


def alternative(headers: Sequence[bytes], text: bytes, html: bytes) -> bytes:
    """A multipart/alternative message: ``headers`` (whole lines, without MIME-Version and
    Content-Type), then the text and the HTML part, each quoted-printable and ending with
    a line end."""
    if not (text.endswith(CRLF) and html.endswith(CRLF)):
        raise ValueError("a part must end with a line end")
    return b"".join((*headers, _MULTIPART, CRLF, _TEXT_PART, text, _HTML_PART, html, _END))
