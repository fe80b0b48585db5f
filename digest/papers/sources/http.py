"""Polite HTTP for every remote source: one place for the rules feeds expect.

A descriptive User-Agent, timeouts, a cap on the response size, a minimum
interval between requests to the same host (arXiv asks for one every 3 s),
retries with backoff on 429/5xx and transport errors that honour ``Retry-After``,
and conditional GET (ETag / Last-Modified) so an unchanged feed costs a 304.
Many feeds send neither validator, so a digest of the last body is kept too: a
body identical to the last one is "not modified" as well, and nothing is parsed.
``file://`` URLs are read from disk under the same size cap, with the file's
modification time standing in for Last-Modified.
"""

from __future__ import annotations

import email.utils
import hashlib
import logging
import time
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

from config.settings import DEFAULT_FETCH_MAX_BYTES
from digest import __version__
from digest.papers.sources import SourceError

log = logging.getLogger(__name__)

USER_AGENT = f"digest/{__version__} (research-paper newsletter)"
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Validators:
    """What the server said identifies this version of the resource."""

    etag: str | None = None
    last_modified: str | None = None
    # Of the body last received: the same bytes again are not a change either.
    digest: str | None = None


def body_digest(body: bytes) -> str:
    return hashlib.blake2b(body, digest_size=16).hexdigest()


@dataclass(frozen=True)
class Response:
    url: str
    status: int
    body: bytes
    content_type: str
    validators: Validators


class HttpStatusError(SourceError):
    """The server answered with an error status; ``body`` may explain (arXiv does)."""

    def __init__(self, url: str, status: int, body: bytes) -> None:
        super().__init__(f"HTTP {status} from {url}")
        self.url = url
        self.status = status
        self.body = body


class Fetcher:
    """Fetches URLs for sources. ``validators`` maps a URL to what the last
    successful fetch of it returned; the caller persists it."""

    def __init__(
        self,
        *,
        client: httpx.Client | None = None,
        user_agent: str = USER_AGENT,
        timeout: float = 30.0,
        max_bytes: int = DEFAULT_FETCH_MAX_BYTES,
        max_retries: int = 3,
        backoff_seconds: float = 2.0,
        max_retry_after: float = 300.0,
        min_interval: Mapping[str, float] | None = None,
        validators: MutableMapping[str, Validators] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client or httpx.Client(timeout=timeout, follow_redirects=True)
        # Feed operators need to know who is fetching and how to reach them.
        self.client.headers["User-Agent"] = user_agent
        self.max_bytes = max_bytes
        self.max_retries = max_retries
        self.backoff_seconds = backoff_seconds
        self.max_retry_after = max_retry_after
        self.min_interval = dict(min_interval or {})
        self.validators: MutableMapping[str, Validators] = (
            validators if validators is not None else {}
        )
        self._sleep = sleep
        self._clock = clock
        self._last_request: dict[str, float] = {}

    def get(
        self,
        url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        conditional: bool = True,
    ) -> Response | None:
        """The response body, or ``None`` when the resource has not changed since
        the last fetch. Raises :class:`SourceError` when it cannot be had."""
        if urlsplit(url).scheme == "file":
            return self._read_file(url, conditional=conditional)
        request = self.client.build_request("GET", url, params=params)
        key = str(request.url)
        known = self.validators.get(key) if conditional else None
        if known and known.etag:
            request.headers["If-None-Match"] = known.etag
        if known and known.last_modified:
            request.headers["If-Modified-Since"] = known.last_modified
        for attempt in range(self.max_retries + 1):
            self._wait_for_turn(request.url.host)
            try:
                response = self._send(request)
            except httpx.TransportError as exc:
                if attempt == self.max_retries:
                    raise SourceError(f"cannot fetch {key}: {exc!r}") from exc
                delay = self._backoff(attempt)
                log.warning("fetch %s failed (%r); retrying in %.0fs", key, exc, delay)
                self._sleep(delay)
                continue
            status, headers, body = response
            if status == 304:
                return None
            if status in _RETRY_STATUSES and attempt < self.max_retries:
                delay = self._retry_after(headers.get("retry-after"), attempt)
                if delay > self.max_retry_after:
                    raise SourceError(
                        f"HTTP {status} from {key}: asked to wait {delay:.0f}s, giving up"
                    )
                log.warning("fetch %s: HTTP %d; retrying in %.0fs", key, status, delay)
                self._sleep(delay)
                continue
            if not 200 <= status < 300:
                raise HttpStatusError(key, status, body)
            validators = Validators(
                headers.get("etag"), headers.get("last-modified"), body_digest(body)
            )
            if conditional:
                self.validators[key] = validators
            if known and known.digest == validators.digest:
                return None
            return Response(key, status, body, headers.get("content-type", ""), validators)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _send(self, request: httpx.Request) -> tuple[int, httpx.Headers, bytes]:
        with self.client.stream(request.method, request.url, headers=request.headers) as response:
            declared = response.headers.get("content-length")
            if (
                declared
                and declared.isascii()
                and declared.isdigit()
                and int(declared) > self.max_bytes
            ):
                raise SourceError(
                    f"{request.url} is {int(declared):,} bytes, over the {self.max_bytes:,} limit"
                )
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > self.max_bytes:
                    raise SourceError(
                        f"{request.url} is over the {self.max_bytes:,}-byte limit; not read"
                    )
                chunks.append(chunk)
            return response.status_code, response.headers, b"".join(chunks)

    def _read_file(self, url: str, *, conditional: bool) -> Response | None:
        path = Path(unquote(urlsplit(url).path))
        try:
            stat = path.stat()
            if stat.st_size > self.max_bytes:
                raise SourceError(f"{path} is {stat.st_size:,} bytes, over the limit")
            modified = email.utils.format_datetime(
                datetime.fromtimestamp(stat.st_mtime, UTC), usegmt=True
            )
            etag = f'"{stat.st_mtime_ns}-{stat.st_size}"'
            known = self.validators.get(url) if conditional else None
            if known and (known.etag, known.last_modified) == (etag, modified):
                return None
            body = path.read_bytes()
        except OSError as exc:
            raise SourceError(f"cannot read {path}: {exc.strerror or exc}") from exc
        validators = Validators(etag, modified, body_digest(body))
        if conditional:
            self.validators[url] = validators
        if known and known.digest == validators.digest:
            return None
        return Response(url, 200, body, "", validators)

    def _wait_for_turn(self, host: str) -> None:
        interval = self.min_interval.get(host, 0.0)
        last = self._last_request.get(host)
        if interval and last is not None:
            remaining = last + interval - self._clock()
            if remaining > 0:
                self._sleep(remaining)
        self._last_request[host] = self._clock()

    def _backoff(self, attempt: int) -> float:
        return float(self.backoff_seconds * 2**attempt)

    def _retry_after(self, value: str | None, attempt: int) -> float:
        """Seconds to wait: the server's ``Retry-After`` (seconds or HTTP date), else backoff."""
        if value:
            value = value.strip()
            if value.isascii() and value.isdigit():
                return float(value)
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                pass
            else:
                if when.tzinfo is None:
                    when = when.replace(tzinfo=UTC)
                return max(0.0, (when - datetime.now(UTC)).total_seconds())
        return self._backoff(attempt)

    def close(self) -> None:
        self.client.close()
