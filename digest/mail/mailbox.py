"""What the local SMTP sink received, read back for the mail viewer of ``digest serve``.

A message's id is its ``.eml`` file's name without the suffix, as
:class:`digest.mail.sink.EmlFileHandler` writes it (``<time in ns>-<n>``): digits
and one hyphen, checked before any path is built, so no id names a file outside
the folder or any other kind of file in it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from pathlib import Path

_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,12}")
# The listing's length: a development mailbox, not an archive.
LISTED = 500


class NoSuchMessage(LookupError):
    """No message has this id (or the id is not one the sink writes)."""


@dataclass(frozen=True)
class Summary:
    id: str
    received: datetime
    to: str
    subject: str


@dataclass(frozen=True)
class StoredMessage:
    summary: Summary
    sender: str
    return_path: str
    message: EmailMessage
    raw: str

    def html(self) -> str | None:
        return _content(self.message, "html")

    def text(self) -> str | None:
        return _content(self.message, "plain")


def _content(message: EmailMessage, subtype: str) -> str | None:
    part = message.get_body(preferencelist=(subtype,))
    if part is None:
        return None
    content: str = part.get_content()
    return content


def _received(message_id: str) -> datetime:
    nanoseconds = int(message_id.split("-", 1)[0])
    return datetime.fromtimestamp(nanoseconds / 1e9, UTC)


class Mailbox:
    """The ``.eml`` files in ``directory``, newest first."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, message_id: str) -> Path:
        if not _ID.fullmatch(message_id):
            raise NoSuchMessage(message_id)
        path = self.directory / f"{message_id}.eml"
        if not path.is_file():
            raise NoSuchMessage(message_id)
        return path

    def summaries(self, limit: int = LISTED) -> list[Summary]:
        if not self.directory.is_dir():
            return []
        # The name starts with the time received: by name is by time.
        ids = sorted(
            (path.stem for path in self.directory.glob("*.eml") if _ID.fullmatch(path.stem)),
            key=lambda stem: tuple(int(n) for n in stem.split("-")),
            reverse=True,
        )
        parser = BytesHeaderParser(policy=policy.default)
        summaries = []
        for message_id in ids[:limit]:
            try:
                with (self.directory / f"{message_id}.eml").open("rb") as file:
                    headers = parser.parse(file)
            except FileNotFoundError:  # removed since the listing
                continue
            summaries.append(
                Summary(
                    message_id,
                    _received(message_id),
                    str(headers.get("To", "")),
                    str(headers.get("Subject", "")),
                )
            )
        return summaries

    def get(self, message_id: str) -> StoredMessage:
        data = self._path(message_id).read_bytes()
        message = message_from_bytes(data, policy=policy.default)
        assert isinstance(message, EmailMessage)
        summary = Summary(
            message_id,
            _received(message_id),
            str(message.get("To", "")),
            str(message.get("Subject", "")),
        )
        return StoredMessage(
            summary,
            sender=str(message.get("From", "")),
            return_path=str(message.get("Return-Path", "")),
            message=message,
            raw=data.decode("utf-8", errors="replace"),
        )
