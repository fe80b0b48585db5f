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
        self._marker = re.compile(f"{_OPEN}{self._nonce}:([A-Za-z0-9_]+){_CLOSE}")

    def __getitem__(self, name: str) -> str:
        return f"{_OPEN}{self._nonce}:{name}{_CLOSE}"

    def cut(self, rendered: str) -> Skeleton:
        """The skeleton of ``rendered``, a template's output with these markers in it."""
        # re.split alternates: text, hole name, text, ..., text.
        split = self._marker.split(rendered)
        if any(_OPEN in piece or _CLOSE in piece for piece in split[0::2]):
            raise ValueError(
                "a template changed a per-reader value's marker: print such values as they are"
            )
        parts = [
            f"%({part})s".encode("ascii")
            if index % 2
            else quoted_printable(part).replace(b"%", b"%%")
            for index, part in enumerate(split)
            if part
        ]
        return Skeleton(SOFT_BREAK.join(parts))
