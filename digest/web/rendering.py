"""Server-rendered pages: ``templates/web/<name>.html`` with the site's name."""

from __future__ import annotations

from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment


class Pages:
    def __init__(self, templates: Environment, *, site_name: str) -> None:
        self.templates = templates
        self.site_name = site_name

    def page(self, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        return HTMLResponse(self.render(name, **context), status_code=status_code)

    def render(self, name: str, **context: Any) -> str:
        """``templates/web/<name>.html`` as text (a page, or a fragment such as a feed entry's)."""
        return self.templates.get_template(f"web/{name}.html").render(
            site_name=self.site_name, **context
        )

    def message(
        self, title: str, body: str, status_code: int = 200, link: tuple[str, str] | None = None
    ) -> HTMLResponse:
        """A page that only says something, with at most one link onwards."""
        return self.page("message", status_code, title=title, body=body, link=link)
