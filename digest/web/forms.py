"""Reading a posted form: text fields only, each within a size of its own.

Starlette's parser would take up to 1 MB a field and keep a file part aside,
where a route reading ``interests`` never sees it; the field would be missing and
the form go through as if left empty. Here a file part refuses the form (400),
and a field larger than its limit is refused (413) with a message naming the
field, never echoing what was sent. The domain's own, smaller limits (such as
``MAX_INTERESTS``) still answer with the form and a message beside the field.
"""

from __future__ import annotations

from fastapi import HTTPException, Request
from starlette.exceptions import HTTPException as StarletteHTTPException

from digest.subscriptions.subscribers import MAX_INTERESTS

# Characters per field. An address is at most 320 (RFC 3696's 64 + @ + 255); the
# lists hold at most 50 items of 200 (authors), 40 (categories), 100 (keywords).
FIELD_LIMITS: dict[str, int] = {
    "email": 320,
    "new_email": 320,
    "interests": 2 * MAX_INTERESTS,
    "followed_authors": 12_000,
    "categories": 4_000,
    "excluded_keywords": 6_000,
    "csrf": 1_000,
}
# Every other field of our forms is a word or a number (frequency, timezone, kind…).
OTHER_FIELD_LIMIT = 500
MAX_FIELDS = 64
# The parser counts bytes as sent: a character may take nine ("%E2%82%AC").
_PARSER_LIMIT = 9 * max(FIELD_LIMITS.values())


class FieldTooLarge(HTTPException):
    def __init__(self, name: str | None, limit: int | None = None) -> None:
        what = f"The field “{name[:40]}”" if name else "A field of this form"
        most = f" (at most {limit} characters)" if limit else ""
        super().__init__(413, f"{what} is too long{most}; nothing was done.")


class NotAFormField(HTTPException):
    def __init__(self) -> None:
        super().__init__(400, "This form takes text only, not files; nothing was done.")


async def read_form(request: Request) -> dict[str, str]:
    try:
        form = await request.form(max_files=0, max_fields=MAX_FIELDS, max_part_size=_PARSER_LIMIT)
    except StarletteHTTPException as exc:
        # Starlette says what went wrong only in words.
        detail = str(exc.detail)
        if "maximum size" in detail:
            raise FieldTooLarge(None) from None
        if "files" in detail:
            raise NotAFormField() from None
        raise
    fields: dict[str, str] = {}
    for name, value in form.multi_items():
        if not isinstance(value, str):
            raise NotAFormField()
        limit = FIELD_LIMITS.get(name, OTHER_FIELD_LIMIT)
        if len(value) > limit:
            raise FieldTooLarge(name if name in FIELD_LIMITS else None, limit)
        fields[name] = value
    return fields
