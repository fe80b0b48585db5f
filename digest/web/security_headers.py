"""The headers every answer carries, pages and the one-click shortcut's alike."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self' 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # Not no-referrer: under it a browser posts our own forms with "Origin: null",
    # and the origin check (digest.web.origin) would refuse them. Other sites
    # still learn nothing, not even that a reader came from here.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    # The pages use no camera, microphone, location, payment or the like.
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=(), "
    "interest-cohort=()",
}
# Sent only when the site is served over https (BASE_URL): over plain http a browser
# ignores it, and a development server on loopback must stay reachable.
STRICT_TRANSPORT_SECURITY = "max-age=31536000; includeSubDomains"


# A response may set these itself (the mail viewer of ``digest serve`` frames an
# email's HTML); every other header is always the one above.
OWN_POLICY_HEADERS = ("Content-Security-Policy", "X-Frame-Options")


class SecurityHeaders:
    """Adds SECURITY_HEADERS (and HSTS on https) to every response, keeping a
    response's own OWN_POLICY_HEADERS. Plain ASGI: ``@app.middleware``
    (BaseHTTPMiddleware) costs a task and a stream per request, 8% of the
    one-click spike."""

    def __init__(self, app: ASGIApp, *, https: bool = False) -> None:
        self.app = app
        self.headers = dict(SECURITY_HEADERS)
        if https:
            self.headers["Strict-Transport-Security"] = STRICT_TRANSPORT_SECURITY

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = MutableHeaders(scope=message)
                own = {name: headers[name] for name in OWN_POLICY_HEADERS if name in headers}
                headers.update(self.headers)
                headers.update(own)
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            # Starlette answers an unhandled error from its outermost middleware,
            # outside this one: that 500 would go out without these headers.
            if not started:
                answer = PlainTextResponse(
                    "Something went wrong on our side; please try again later.",
                    status_code=500,
                    headers=self.headers,
                )
                await answer(scope, receive, send)
            raise
