"""The production fetch against a real HTTP server on loopback: what it reads, and
what it refuses to (redirects, oversized bodies, errors)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from digest.bounces.sns import FETCH_MAX_BYTES, FetchError, https_fetch

CERTIFICATE = b"-----BEGIN CERTIFICATE-----\nMIIB...\n-----END CERTIFICATE-----\n"


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/cert.pem":
            self._answer(200, CERTIFICATE)
        elif self.path == "/moved.pem":
            self.send_response(302)
            self.send_header("Location", "http://evil.example/cert.pem")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/huge.pem":
            self._answer(200, b"x" * (FETCH_MAX_BYTES + 1))
        else:
            self._answer(404, b"not found")

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_the_body_of_a_200_is_returned(server: str) -> None:
    assert https_fetch(f"{server}/cert.pem") == CERTIFICATE


@pytest.mark.parametrize(
    ("path", "why"),
    [("/moved.pem", "HTTP 302"), ("/huge.pem", "more than"), ("/missing.pem", "HTTP 404")],
)
def test_redirects_errors_and_oversized_bodies_are_refused(
    server: str, path: str, why: str
) -> None:
    with pytest.raises(FetchError, match=why):
        https_fetch(f"{server}{path}")


def test_an_unreachable_host_is_a_fetch_error() -> None:
    # Port 1 on loopback: nothing listens there.
    with pytest.raises(FetchError):
        https_fetch("http://127.0.0.1:1/cert.pem")
