"""'Papers you wrote or like' on the preferences page: pasted ids and uploaded
BibTeX / RIS files become the reader's "more like this", arXiv answered by
recorded responses; the form is the only one that takes a file, and only so big."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from config.settings import Settings
from digest.db.engine import make_session_factory
from digest.db.unit_of_work import unit_of_work
from digest.papers.models import Paper
from digest.papers.sources.http import Fetcher
from digest.subscriptions.library import MAX_UPLOAD_BYTES
from digest.subscriptions.models import Feedback, FeedbackKind, Subscriber
from digest.web.app import create_app
from tests.factories import make_paper
from tests.papers.sources.recorded import fixture_bytes
from tests.web.readers import csrf, make_reader, preferences_path

ONE_MISSING = "arxiv_api/arxiv_api_idlist_2ids-1-missing_1707.08567_2026-04-12.xml"
OLD_STYLE = "arxiv_api/arxiv_api_idlist_astro-ph-0601001_oldstyle-id_affiliations_2026-05-11.xml"
WORKSHOP = "Proceedings of Workshop AEW10: Concepts in Information Theory and Communications"
HOT_JUPITERS = "Frequency of Hot Jupiters and Very Hot Jupiters from the OGLE-III Transit Surveys"
RECORDED = {"0808.05394,1707.08567": ONE_MISSING, "astro-ph/0601001": OLD_STYLE}


@pytest.fixture
def arxiv_requests() -> list[httpx.Request]:
    return []


@pytest.fixture
def client(web_settings: Settings, arxiv_requests: list[httpx.Request]) -> Iterator[TestClient]:
    """The app, its arXiv fetches answered by recorded responses."""

    def answer(request: httpx.Request) -> httpx.Response:
        arxiv_requests.append(request)
        if request.url.params.get("id_list") == "2611.99903":
            # arXiv overloaded, as it answers then: wait an hour.
            return httpx.Response(503, headers={"Retry-After": "3600"}, text="busy")
        recorded = RECORDED.get(request.url.params.get("id_list", ""))
        if request.url.host != "export.arxiv.org" or recorded is None:
            return httpx.Response(404, text="not recorded")
        return httpx.Response(200, content=fixture_bytes(recorded))

    def fetcher() -> Fetcher:
        return Fetcher(client=httpx.Client(transport=httpx.MockTransport(answer)))

    app = create_app(web_settings, paper_fetcher=fetcher)
    with TestClient(app, follow_redirects=False) as client:
        yield client


def liked(database_engine: Engine, reader: Subscriber) -> list[str]:
    with unit_of_work(make_session_factory(database_engine)) as session:
        return list(
            session.scalars(
                select(Paper.canonical_id)
                .join(Feedback, Feedback.paper_id == Paper.id)
                .where(Feedback.subscriber_id == reader.id, Feedback.kind == FeedbackKind.MORE)
                .order_by(Paper.canonical_id)
            )
        )


def report(page: str) -> list[str]:
    found = re.search(r'<div class="notice" role="status"><ul>(.*?)</ul></div>', page, re.S)
    assert found, "the page reports nothing about the import"
    return [html.unescape(item) for item in re.findall(r"<li>(.*?)</li>", found.group(1))]


def references(page: str) -> list[str]:
    found = re.search(r'<ul class="references">(.*?)</ul>', page, re.S)
    if found is None:
        return []
    return [html.unescape(t.strip()) for t in re.findall(r"<li>([^<]*)", found.group(1))]


def test_the_preferences_page_offers_pasting_ids_and_uploading_a_file(
    client: TestClient, web_settings: Settings, database_engine: Engine
) -> None:
    reader = make_reader(database_engine)
    page = client.get(preferences_path(web_settings, reader)).text

    assert "Papers you wrote or like" in page
    assert 'enctype="multipart/form-data"' in page
    assert '<textarea id="papers" name="papers"' in page
    assert '<input type="file" id="library_file" name="library_file"' in page
    assert "at most 1 MB" in page


def test_pasted_ids_are_fetched_recorded_listed_and_removable(
    client: TestClient,
    web_settings: Settings,
    database_engine: Engine,
    arxiv_requests: list[httpx.Request],
) -> None:
    reader = make_reader(database_engine)
    path = preferences_path(web_settings, reader)
    token = csrf(client.get(path).text)

    answer = client.post(
        f"{path}/library",
        data={"csrf": token, "papers": "https://arxiv.org/abs/0808.05394, 1707.08567v1\nhello"},
    )

    assert answer.status_code == 200
    assert report(answer.text) == [
        "1 paper(s) added to your references",
        "1 not found: line 1 arXiv:0808.05394",
        "not understood: line 2: not an arXiv id, arXiv URL or DOI: hello",
    ]
    assert references(answer.text) == [WORKSHOP]
    assert liked(database_engine, reader) == ["arxiv:1707.08567"]
    assert [r.url.params["id_list"] for r in arxiv_requests] == ["0808.05394,1707.08567"]

    # Pasted again: the stored paper is used, arXiv is asked only for the missing one.
    again = client.post(f"{path}/library", data={"csrf": token, "papers": "1707.08567"})
    assert report(again.text) == ["0 paper(s) added to your references, 1 already there"]
    assert len(arxiv_requests) == 1

    paper_id = re.search(r'name="paper_id" value="(\d+)"', again.text)
    assert paper_id
    removed = client.post(
        f"{path}/library/remove", data={"csrf": token, "paper_id": paper_id.group(1)}
    )
    assert removed.status_code == 200
    assert f"“{WORKSHOP}” is no longer one of your references." in html.unescape(removed.text)
    assert references(removed.text) == []
    assert liked(database_engine, reader) == []


def test_a_bibtex_file_with_a_malformed_entry_imports_the_rest(
    client: TestClient, web_settings: Settings, database_engine: Engine
) -> None:
    reader = make_reader(database_engine)
    with unit_of_work(make_session_factory(database_engine)) as session:
        make_paper(session, canonical_id="arxiv:2611.99901", title="Graph networks for molecules")
    path = preferences_path(web_settings, reader)
    token = csrf(client.get(path).text)
    bibtex = (
        b"@article{mine,\n  title = {Graph Networks for Molecules},\n"
        b"  eprint = {2611.99901}, archivePrefix = {arXiv}\n}\n"
        b"@misc{broken, title = {never closed\n"
        b"@article{theirs, title = {Hot Jupiters}, url = {https://arxiv.org/abs/astro-ph/0601001v1}}\n"
    )

    answer = client.post(
        f"{path}/library",
        data={"csrf": token},
        files={"library_file": ("library.bib", bibtex, "application/x-bibtex")},
    )

    assert answer.status_code == 200
    assert report(answer.text) == [
        "2 paper(s) added to your references",
        "not understood: file line 5: BibTeX entry not understood (a “{” is never closed)",
    ]
    assert liked(database_engine, reader) == ["arxiv:2611.99901", "arxiv:astro-ph/0601001"]
    assert references(answer.text)[1].startswith(HOT_JUPITERS)


def test_a_ris_file_with_arxiv_links_is_imported(
    client: TestClient, web_settings: Settings, database_engine: Engine
) -> None:
    reader = make_reader(database_engine)
    path = preferences_path(web_settings, reader)
    token = csrf(client.get(path).text)
    ris = (
        b"TY  - JOUR\r\nTI  - Hot Jupiters\r\n"
        b"UR  - http://arxiv.org/abs/astro-ph/0601001v1\r\nER  - \r\n"
        b"TY  - JOUR\r\nTI  - A paper nobody ingested\r\nER  - \r\n"
    )

    answer = client.post(
        f"{path}/library",
        data={"csrf": token, "papers": ""},
        files={"library_file": ("export.ris", ris, "application/x-research-info-systems")},
    )

    assert report(answer.text) == [
        "1 paper(s) added to your references",
        "1 not found: file line 5 “A paper nobody ingested”",
    ]
    assert liked(database_engine, reader) == ["arxiv:astro-ph/0601001"]


# Just over the cap (read, then refused), and far over it (refused by its length).
@pytest.mark.parametrize("padding", [MAX_UPLOAD_BYTES // 10, 3 * MAX_UPLOAD_BYTES // 10])
def test_a_file_over_the_cap_is_refused_with_a_message_and_nothing_imported(
    client: TestClient, web_settings: Settings, database_engine: Engine, padding: int
) -> None:
    reader = make_reader(database_engine)
    with unit_of_work(make_session_factory(database_engine)) as session:
        # A paper of its own per case: the module's database keeps its rows.
        make_paper(session, canonical_id=f"arxiv:2611.{90000 + padding // 100_000}")
    path = preferences_path(web_settings, reader)
    token = csrf(client.get(path).text)
    # Valid BibTeX throughout, padded with comments past the cap.
    entry = f"@misc{{a, eprint = {{2611.{90000 + padding // 100_000}}}}}\n".encode()
    big = entry + b"% padding\n" * padding

    answer = client.post(
        f"{path}/library",
        data={"csrf": token},
        files={"library_file": ("huge.bib", big, "text/plain")},
    )

    assert answer.status_code == 413
    assert "The file is larger than 1 MB; nothing was imported." in answer.text
    assert liked(database_engine, reader) == []


def test_an_empty_library_form_says_what_to_give(
    client: TestClient, web_settings: Settings, database_engine: Engine
) -> None:
    reader = make_reader(database_engine)
    path = preferences_path(web_settings, reader)
    token = csrf(client.get(path).text)

    answer = client.post(
        f"{path}/library",
        data={"csrf": token, "papers": "  "},
        files={"library_file": ("", b"", "application/octet-stream")},
    )

    assert answer.status_code == 400
    assert report(answer.text) == ["Paste arXiv ids or links, or choose a BibTeX or RIS file."]


def test_the_library_form_needs_its_csrf_token_and_our_origin(
    client: TestClient,
    web_settings: Settings,
    database_engine: Engine,
    arxiv_requests: list[httpx.Request],
) -> None:
    reader = make_reader(database_engine)
    path = preferences_path(web_settings, reader)
    token = csrf(client.get(path).text)

    forged = client.post(f"{path}/library", data={"csrf": "forged", "papers": "1707.08567"})
    foreign = client.post(
        f"{path}/library",
        data={"csrf": token, "papers": "1707.08567"},
        headers={"Origin": "https://elsewhere.example"},
    )

    assert forged.status_code == 400 and foreign.status_code == 403
    assert liked(database_engine, reader) == []
    assert arxiv_requests == []


def test_a_file_is_taken_only_in_the_library_field_and_only_by_the_library_form(
    client: TestClient, web_settings: Settings, database_engine: Engine
) -> None:
    reader = make_reader(database_engine, interests="graphs")
    path = preferences_path(web_settings, reader)
    token = csrf(client.get(path).text)
    file = ("library.bib", b"@misc{a, eprint = {1707.08567}}", "text/plain")

    elsewhere = client.post(f"{path}/library", data={"csrf": token}, files={"papers": file})
    preferences = client.post(path, data={"csrf": token}, files={"library_file": file})
    removal = client.post(f"{path}/library/remove", data={"csrf": token}, files={"paper_id": file})

    for answer in (elsewhere, preferences, removal):
        assert answer.status_code == 400 and "not files" in answer.text
    assert liked(database_engine, reader) == []


def test_an_overloaded_arxiv_is_reported_at_once_and_stored_papers_still_added(
    client: TestClient,
    web_settings: Settings,
    database_engine: Engine,
    arxiv_requests: list[httpx.Request],
) -> None:
    reader = make_reader(database_engine)
    with unit_of_work(make_session_factory(database_engine)) as session:
        make_paper(session, canonical_id="arxiv:2611.99904", title="Stored already")
    path = preferences_path(web_settings, reader)
    token = csrf(client.get(path).text)

    answer = client.post(f"{path}/library", data={"csrf": token, "papers": "2611.99903 2611.99904"})

    lines = report(answer.text)
    assert lines[:2] == [
        "1 paper(s) added to your references",
        "1 not found: line 1 arXiv:2611.99903",
    ]
    assert lines[2].startswith("arXiv could not be asked: HTTP 503")
    assert liked(database_engine, reader) == ["arxiv:2611.99904"]
    # The reader is not kept waiting an hour, nor through retries.
    assert len(arxiv_requests) == 1
