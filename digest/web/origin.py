"""Where a posted form came from: this site, another one, or no browser at all.

The CSRF token proves a form was issued by this site for this reader; the Origin
header (or the Referer, which older browsers send instead) proves the browser
posted it from one of this site's pages. A browser always sends one of them on a
cross-site POST, so only a request carrying neither (curl, a mail provider's
one-click request) is taken without: it carries no one's cookies or session, and
the token still has to be right.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import HTTPException
from starlette.datastructures import Headers

_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of a URL, lower case, default port left out; None
    for what is no web origin (``null``, a path, garbage)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    shown_port = "" if port in (None, _DEFAULT_PORTS[scheme]) else f":{port}"
    return f"{scheme}://{parts.hostname.lower()}{shown_port}"


class ForeignOrigin(HTTPException):
    def __init__(self) -> None:
        super().__init__(
            403,
            "This form was sent from another site, so nothing was done. "
            "Please use the form on our own page.",
        )


def check_same_origin(headers: Headers, site_origin: str) -> None:
    """Raise ForeignOrigin unless the request's Origin, or its Referer when it
    has no Origin, is ``site_origin``. ``null`` (a sandboxed frame, a page told to
    send no referrer) is foreign."""
    claimed = headers.get("origin")
    if claimed is None:
        claimed = headers.get("referer")
        if claimed is None:
            return
    if origin_of(claimed) != site_origin:
        raise ForeignOrigin()
