"""``digest preview``: what the ranking would pick for some interests or a reader."""

from __future__ import annotations

from typing import Annotated

import typer

from digest.cli.context import fail, open_runtime


def preview(
    interests: Annotated[str, typer.Option(help="Free-text interests, comma separated.")] = "",
    authors: Annotated[list[str] | None, typer.Option("--authors", help="Followed author.")] = None,
    categories: Annotated[
        list[str] | None, typer.Option("--categories", help="arXiv category (cs.CL).")
    ] = None,
    exclude: Annotated[list[str] | None, typer.Option("--exclude", help="Keyword to drop.")] = None,
    email: Annotated[
        str | None, typer.Option(help="Rank for this subscriber instead (their profile).")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Candidates first seen from this date (YYYY-MM-DD).")
    ] = None,
    top: Annotated[int, typer.Option(min=1, max=500)] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False,
    trending: Annotated[
        bool,
        typer.Option(
            "--trending", help="Print the trending section (less the picks) as JSON instead."
        ),
    ] = False,
) -> None:
    """Rank the papers in the database for an ad-hoc profile or a subscriber."""
    import json
    from datetime import UTC, datetime

    from digest.clock import utcnow
    from digest.db.unit_of_work import unit_of_work
    from digest.ranking.picks import Pick
    from digest.ranking.profiles import Profile, profile_of, sent_paper_ids
    from digest.subscriptions.subscribers import (
        SubscriberError,
        find_subscriber,
        normalise_email,
    )

    start = None
    if since is not None:
        try:
            start = datetime.fromisoformat(since).replace(tzinfo=UTC)
        except ValueError:
            fail(f"--since {since!r} is not a date like 2026-11-20", 2)
    runtime = open_runtime()
    now = utcnow()
    with unit_of_work(runtime.session_factory) as session:
        sent: set[int] = set()
        if email is not None:
            try:
                subscriber = find_subscriber(session, email)
            except SubscriberError as exc:
                fail(str(exc), 2)
            if subscriber is None:
                fail(f"no subscriber with the address {normalise_email(email)}", 2)
            profile = profile_of(session, subscriber)
            sent = sent_paper_ids(session, subscriber.id)
        else:
            profile = Profile(
                interests=interests,
                authors=tuple(authors or ()),
                categories=tuple(categories or ()),
                excluded=tuple(exclude or ()),
            )
        profile = Profile(**{**profile.__dict__, "limit": top})
        selection = runtime.ranker.rank(session, profile, now=now, sent=sent, since=start)
        # As a digest ends: the moment's trending list, less this reader's picks.
        chosen = {pick.paper.id for pick in selection.picks}
        size = runtime.ranking_config.selection.trending_section_size
        section = [
            p for p in runtime.ranker.trending(session, now=now) if p.paper.id not in chosen
        ][:size]

    def shown(pick: Pick) -> dict[str, object]:
        return {
            "id": pick.paper.canonical_id,
            "title": pick.paper.shown_title,
            "score": round(pick.score, 4),
            "relevance": None if pick.relevance is None else round(pick.relevance, 4),
            "reason": pick.reason,
            "url": pick.paper.url,
        }

    picks = [shown(pick) for pick in selection.picks]
    if trending:
        typer.echo(json.dumps([shown(pick) for pick in section], ensure_ascii=False))
        return
    if as_json:
        typer.echo(json.dumps({"picks": picks, "note": selection.note}, ensure_ascii=False))
        return
    if selection.note:
        typer.echo(selection.note, err=True)
    for number, item in enumerate(picks, 1):
        typer.echo(f"{number:>3}. {item['id']}  {item['score']:.3f}  {item['title']}")
        typer.echo(f"     {item['reason']}")
    if section and picks:
        typer.echo("\nTrending today")
        for pick in section:
            typer.echo(f"  -  {pick.paper.canonical_id}  {pick.paper.shown_title}")
            typer.echo(f"     {pick.reason}")
