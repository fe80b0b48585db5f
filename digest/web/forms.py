"""Reading a posted form: text fields only, each within a size of its own.

Starlette's parser would take up to 1 MB a field and keep a file part aside,
where a route reading ``interests`` never sees it; the field would be missing and
the form go through as if left empty. Here a file part refuses the form (400),
and a field larger than its limit is refused (413) with a message naming the
field, never echoing what was sent. The domain's own, smaller limits (such as
``MAX_INTERESTS``) still answer with the form and a message beside the field.

One form takes a file: a reader's library (BibTeX or RIS) on the preferences
page, read by :func:`read_upload_form` alone, for the one field it names and
under a size cap counted as the body arrives. Every other form still refuses files.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from fastapi import HTTPException, Request
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import FormParser, MultiPartException, MultiPartParser

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


class UploadTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(
            413, f"The file is larger than {limit // 1_000_000} MB; nothing was imported."
        )


# What a form around the file may add to it: its text fields, the multipart framing.
_UPLOAD_OVERHEAD = 9 * 50_000


async def read_upload_form(
    request: Request, *, file_field: str, max_file_bytes: int, field_limits: dict[str, int]
) -> tuple[dict[str, str], bytes | None]:
    """A form's text fields and the one file it may carry in ``file_field`` (``None``
    when no file was chosen). A file under another name refuses the form, as
    :func:`read_form` does; a body past the cap is refused before it is all read."""
    most = max_file_bytes + _UPLOAD_OVERHEAD
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > most:
        raise UploadTooLarge(max_file_bytes)
    content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    limits = {**FIELD_LIMITS, **field_limits}
    part_limit = 9 * max(limits.values())
    try:
        if content_type == "multipart/form-data":
            form: FormData = await MultiPartParser(
                request.headers,
                _capped(request, most, max_file_bytes),
                max_files=1,
                max_fields=MAX_FIELDS,
                max_part_size=part_limit,
            ).parse()
        else:
            form = await FormParser(
                request.headers,
                _capped(request, most, max_file_bytes),
                max_fields=MAX_FIELDS,
                max_part_size=part_limit,
            ).parse()
    except MultiPartException as exc:
        if "maximum size" in exc.message:
            raise FieldTooLarge(None) from None
        if "files" in exc.message:
            raise NotAFormField() from None
        raise HTTPException(400, exc.message) from None
    try:
        return await _fields_and_file(form, file_field, max_file_bytes, limits)
    finally:
        # Spooled to a temporary file by the parser: closed whether or not it is read.
        for _, value in form.multi_items():
            if isinstance(value, UploadFile):
                await value.close()


async def _fields_and_file(
    form: FormData, file_field: str, max_file_bytes: int, limits: dict[str, int]
) -> tuple[dict[str, str], bytes | None]:
    fields: dict[str, str] = {}
    upload: bytes | None = None
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            if name != file_field:
                raise NotAFormField()
            data = await value.read(max_file_bytes + 1)
            if len(data) > max_file_bytes:
                raise UploadTooLarge(max_file_bytes)
            # A file input left empty is sent as a part with no name and no bytes.
            if data or value.filename:
                upload = data
            continue
        limit = limits.get(name, OTHER_FIELD_LIMIT)
        if len(value) > limit:
            raise FieldTooLarge(name if name in limits else None, limit)
        fields[name] = value
    return fields, upload


async def _capped(request: Request, most: int, file_limit: int) -> AsyncGenerator[bytes, None]:
    # A body sent without Content-Length (chunked) is counted as it arrives.
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > most:
            raise UploadTooLarge(file_limit)
        yield chunk
