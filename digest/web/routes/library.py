"""``/preferences/<token>/library``: a reader's own papers (pasted arXiv ids or
URLs, a BibTeX or RIS file) as their "more like this", and removing one.

The one form of the site that takes a file (see :func:`digest.web.forms.read_upload_form`).
arXiv is asked between two transactions, so no database connection waits on it.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from digest.clock import utcnow
from digest.papers.models import Paper
from digest.subscriptions.feedback import withdraw_feedback
from digest.subscriptions.library import (
    FetchArxiv,
    ParsedLibrary,
    import_library,
    missing_arxiv_ids,
    parse_libraries,
    prefetched,
)
from digest.web.dependencies import ArxivDep, LibraryForm, PreferencesForm, TransactionDep
from digest.web.routes.preferences import PreferencesPageDep

router = APIRouter()


@router.post("/preferences/{token}/library", response_class=HTMLResponse)
async def library_post(
    upload: LibraryForm, view: PreferencesPageDep, arxiv: ArxivDep, transaction: TransactionDep
) -> HTMLResponse:
    form = upload.form

    def to_fetch(session: Session) -> tuple[ParsedLibrary, list[str]]:
        # The form is checked before arXiv is asked anything on its behalf; a
        # megabyte of BibTeX is read here, in the thread pool, not on the event loop.
        form.holder(session)
        parsed = parse_libraries(form.fields.get("papers", ""), upload.file)
        return parsed, missing_arxiv_ids(session, parsed)

    parsed, missing = await transaction(to_fetch)
    fetch: FetchArxiv = await run_in_threadpool(prefetched, arxiv, missing)

    def record(session: Session) -> HTMLResponse:
        subscriber = form.holder(session)
        if not parsed.references and not parsed.problems:
            return view.render(
                session,
                subscriber,
                form.link.token,
                status_code=400,
                library_report=["Paste arXiv ids or links, or choose a BibTeX or RIS file."],
            )
        summary = import_library(session, subscriber, parsed, fetch=fetch, now=utcnow())
        return view.render(session, subscriber, form.link.token, library_report=summary.lines())

    return await transaction(record)


@router.post("/preferences/{token}/library/remove", response_class=HTMLResponse)
async def library_remove_post(
    form: PreferencesForm, view: PreferencesPageDep, transaction: TransactionDep
) -> HTMLResponse:
    def remove(session: Session) -> HTMLResponse:
        subscriber = form.holder(session)
        paper_id = form.fields.get("paper_id", "")
        known = paper_id.isascii() and paper_id.isdigit()
        paper = session.get(Paper, int(paper_id)) if known else None
        if paper is None:
            return view.render(
                session, subscriber, form.link.token, status_code=400, notice="No such paper."
            )
        withdraw_feedback(session, subscriber, paper.id)
        return view.render(
            session,
            subscriber,
            form.link.token,
            notice=f"“{paper.shown_title}” is no longer one of your references.",
        )

    return await transaction(remove)
