"""A template rendered once with holes where each reader's own values go.

Rendering a template for every reader repeats everything but a few values. Rendered
once with a unique marker in place of each of those values, it comes out as fixed pieces
with holes between them: a :class:`Skeleton`. A reader's text is then the pieces joined
with that reader's values. The pieces are kept quoted-printable and joined by soft line
breaks (:mod:`digest.mail.wire`), so a reader costs one bytes formatting and the encoding
of their own values, not of the whole body.

A value can be a hole only where the template prints it as it is (``{{ email }}``, or a
marker inside a string printed as it is), and it must be filled in as Jinja would have
printed it: HTML-escaped in an HTML template (the caller escapes). A value the template
tests or filters (``{% if interests %}``, ``|truncate``) must be given for real, and is
then part of what a skeleton is kept for. A marker that a filter changed is refused.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from digest.mail.wire import SOFT_BREAK, quoted_printable

# Noncharacters, which Unicode sets aside for a program's internal use: no text we send
# has them, and neither HTML escaping nor Jinja touches them. The random nonce keeps a
# paper or reader text from forging a marker even so.
_OPEN, _CLOSE = "\ufdd0", "\ufdd1"
# One pattern for every skeleton's markers, compiled once: a pattern per nonce cost a
# regular expression compile per paper block (a tenth of a block's rendering). The
# nonce is read back and checked.
_MARKER = re.compile(f"{_OPEN}([0-9a-f]+):([A-Za-z0-9_]+){_CLOSE}")


@dataclass(frozen=True)
class Skeleton:
    # Quoted-printable pieces and ``%(name)s`` holes, joined by soft line breaks; a
    # literal "%" doubled.
    template: bytes

    def fill(self, values: Mapping[bytes, bytes]) -> bytes:
        """The text with each hole filled: ``values`` by hole name (in bytes), each value
        quoted-printable (:func:`digest.mail.wire.quoted_printable`)."""
        return self.template % values


class Holes:
    """The markers of one skeleton: ``holes["email"]`` goes into the template context
    where a reader's address will go."""

    def __init__(self) -> None:
        self._nonce = secrets.token_hex(8)

    def __getitem__(self, name: str) -> str:
        return f"{_OPEN}{self._nonce}:{name}{_CLOSE}"

    def cut(self, rendered: str) -> Skeleton:
        """The skeleton of ``rendered``, a template's output with these markers in it."""
        # re.split alternates: text, nonce, hole name, text, ..., text.
        split = _MARKER.split(rendered)
        texts, nonces, names = split[0::3], split[1::3], split[2::3]
        if any(_OPEN in piece or _CLOSE in piece for piece in texts) or any(
            nonce != self._nonce for nonce in nonces
        ):
            raise ValueError(
                "a template changed a per-reader value's marker: print such values as they are"
            )
        parts = [quoted_printable(texts[0]).replace(b"%", b"%%")] if texts[0] else []
        for name, text in zip(names, texts[1:], strict=True):
            parts.append(f"%({name})s".encode("ascii"))
            if text:
                parts.append(quoted_printable(text).replace(b"%", b"%%"))
        return Skeleton(SOFT_BREAK.join(parts))
