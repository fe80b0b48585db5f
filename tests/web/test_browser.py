"""A reader's whole journey in a real browser (headless Chromium on a phone-sized screen).

The real ``digest web`` server runs as a subprocess on SQLite, mail goes through a real
SMTP exchange to the sink, and the reader does everything by clicking: subscribe,
confirm from the emailed link, change preferences, receive a real digest (the
``digest ingest`` and ``digest send-due`` commands, no shortcut) and unsubscribe from
the link in that digest. Every page is saved as a PNG under ``artifacts/browser/`` and
must fit the phone's width.

Chromium and chromedriver come from Debian (``chromium``, ``chromium-driver``); ``.ci/run``
installs them. Selenium is given both paths, so Selenium Manager never downloads.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

from digest.mail.sink import SmtpSink, free_port, html_part
from digest.processes import VENV_BIN, Process, run_to_end, wait_for
from tests.paths import PROJECT_ROOT
from tests.services import digest_serve, digest_web

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = PROJECT_ROOT / "artifacts" / "browser"
# A common phone: CSS pixels, drawn at twice the density.
PHONE = {"width": 390, "height": 844, "pixelRatio": 2, "mobile": True, "touch": True}
EMAIL = "browser.reader@example.org"
# A zone with a half-hour offset: the send hour is the reader's own, not UTC's.
TIMEZONE = "Asia/Kolkata"

# The suite's own timeout (pyproject) bounds it: on a loaded machine the seven CLI runs
# and the server's start alone have taken close to two minutes.
pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="needs Debian's chromium and chromium-driver (/usr/bin/chromium, "
    "/usr/bin/chromedriver); .ci/run installs them",
)


@dataclass
class Site:
    """The running web server and what the CLI needs to reach the same database."""

    base_url: str
    env: dict[str, str]
    workdir: Path
    web: Process

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_to_end([str(VENV_BIN / "digest"), *args], env=self.env, cwd=self.workdir)


@pytest.fixture
def site(tmp_path: Path, smtp_sink: SmtpSink) -> Iterator[Site]:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")},
        "DIGEST_ENVIRONMENT": "test",
        "DIGEST_SECRET_KEY": "browser-test-secret-key",
        "DIGEST_DATABASE_URL": f"sqlite:///{tmp_path / 'digest.db'}",
        "DIGEST_DATA_DIR": str(tmp_path / "data"),
        "DIGEST_SMTP_URL": smtp_sink.url,
        "DIGEST_BASE_URL": base_url,
        # No internet here: the offline sample is the one source.
        "DIGEST_SOURCES": "sample",
    }
    # Lexical ranking: the journey is the point here, and loading the embedding model and
    # embedding the sample would be most of the test's time (semantic ranking has its own).
    ranking = tmp_path / "ranking.toml"
    ranking.write_text('[relevance]\nsemantic = "off"\n', encoding="utf-8")
    env["DIGEST_RANKING_FILE"] = str(ranking)
    with digest_web(env, tmp_path, port) as web:
        yield Site(base_url, env, tmp_path, web)


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[webdriver.Chrome]:
    # Both paths are given, so Selenium Manager is skipped; offline in case it is not.
    monkeypatch.setenv("SE_OFFLINE", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--window-size=430,932",
    ):
        options.add_argument(argument)
    # Headless windows are at least 500 px wide: emulate the phone's viewport instead.
    options.add_experimental_option("mobileEmulation", {"deviceMetrics": PHONE})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


class Pages:
    """Drives the browser and keeps a full-page screenshot of every page it checks."""

    def __init__(self, driver: webdriver.Chrome, directory: Path) -> None:
        self.driver = driver
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        for old in directory.glob("*.png"):
            old.unlink()
        self.count = 0
        self.count_navigations = 0

    def open(self, url: str) -> None:
        self.driver.get(url)

    def heading(self) -> str:
        return self.driver.find_element(By.TAG_NAME, "h1").text

    def text(self) -> str:
        return self.driver.find_element(By.TAG_NAME, "body").text

    def field(self, name: str) -> WebElement:
        return self.driver.find_element(By.NAME, name)

    def type(self, name: str, value: str) -> None:
        element = self.field(name)
        element.clear()
        element.send_keys(value)

    def button(self, label: str) -> WebElement:
        return self.driver.find_element(By.XPATH, f"//button[normalize-space()='{label}']")

    def follow(self, element: WebElement, heading: str) -> None:
        """Click a button or link and wait until the next page, headed ``heading``, has loaded.

        The old document is marked before the click and the wait is for a loaded document
        without the mark and with that heading. Not element staleness: asking a node of a
        document that is being torn down whether it is stale can fail inside Chromium
        ("unhandled inspector error: Node with given id does not belong to the document").
        A page that posts back to itself ("Save preferences") has the same heading, so the
        heading alone would not tell the pages apart either.
        """
        self.count_navigations += 1
        mark = f"digest-test-page-{self.count_navigations}"
        self.driver.execute_script("window.digestTestPage = arguments[0]", mark)
        element.click()

        def arrived(driver: webdriver.Chrome) -> bool:
            state = driver.execute_script(
                "return [window.digestTestPage || null, document.readyState]"
            )
            if state != [None, "complete"]:
                return False
            return bool(driver.find_element(By.TAG_NAME, "h1").text == heading)

        # Mid-navigation, any WebDriver call may fail with one error or another; the
        # condition is asked again until the deadline, and a miss reports what is shown.
        wait = WebDriverWait(self.driver, 15, ignored_exceptions=(WebDriverException,))
        try:
            wait.until(arrived)
        except TimeoutException:
            raise AssertionError(
                f"expected the page {heading!r} after the click; "
                f"at {self.driver.current_url} the heading reads {self.heading()!r}"
            ) from None

    def shot(self, name: str, width: int = PHONE["width"]) -> Path:
        """Save the whole page as ``NN-name.png`` and check it fits the screen's width
        (the phone's unless told)."""
        self.count += 1
        path = self.directory / f"{self.count:02d}-{name}.png"
        size = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        image = self.driver.execute_cdp_cmd(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
        )
        path.write_bytes(base64.b64decode(image["data"]))
        # Not window.innerWidth: a phone zooms out to show what overflows, and it grows too.
        content, viewport = self.driver.execute_script(
            "const root = document.documentElement; return [root.scrollWidth, root.clientWidth]"
        )
        assert viewport == width, f"{name}: viewport {viewport} px, not {width}"
        assert content <= viewport, f"{name}: {content} px wide, wider than the screen's {viewport}"
        return path

    def console_errors(self) -> list[str]:
        """What the browser logged as errors (failed loads, CSP refusals), favicon aside."""
        entries = self.driver.get_log("browser")  # type: ignore[no-untyped-call]
        return [
            str(entry["message"])
            for entry in entries
            if entry["level"] == "SEVERE" and "favicon.ico" not in entry["message"]
        ]


def wait_for_mail(sink: SmtpSink, count: int) -> list[EmailMessage]:
    assert wait_for(lambda: len(sink.files()) >= count, timeout=15, interval=0.1), (
        f"expected {count} email(s), the sink has {len(sink.files())}"
    )
    return sink.messages()


def link_in(message: EmailMessage, base_url: str, prefix: str) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    found = re.search(rf"{re.escape(base_url)}{prefix}[\w.-]+", body.get_content())
    assert found, f"no {prefix} link in the email"
    return found.group(0)


def due_send_hour(timezone: str) -> int:
    """The reader's current local hour, so that they are due now; 0 (due all day) when the
    local day ends within a minute, so that the date cannot turn between save and send."""
    local = datetime.now(UTC).astimezone(ZoneInfo(timezone))
    tomorrow = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), local.tzinfo)
    return 0 if tomorrow - local < timedelta(minutes=1) else local.hour


def subscriber_line(site: Site) -> list[str]:
    listed = site.cli("subscribers", "list").stdout.splitlines()
    (line,) = [row for row in listed if row.startswith(f"{EMAIL}\t")]
    return line.split("\t")


def test_a_reader_subscribes_chooses_preferences_gets_a_digest_and_unsubscribes(
    site: Site, browser: webdriver.Chrome, smtp_sink: SmtpSink
) -> None:
    pages = Pages(browser, ARTIFACTS)

    # Subscribe.
    pages.open(f"{site.base_url}/")
    assert pages.heading() == "Get trending papers in your inbox"
    pages.type("email", EMAIL)
    pages.type("interests", "diffusion, language models")
    pages.shot("subscribe")
    pages.follow(pages.button("Subscribe"), "Check your inbox")
    assert EMAIL in pages.text()
    pages.shot("check-inbox")

    # Confirm from the emailed link: opening it changes nothing, the button does.
    (confirmation,) = wait_for_mail(smtp_sink, 1)
    assert confirmation["To"] == EMAIL and "Confirm" in confirmation["Subject"]
    pages.open(link_in(confirmation, site.base_url, "/confirm/"))
    assert pages.heading() == "Confirm your subscription"
    assert subscriber_line(site)[1] == "pending"
    pages.shot("confirm")
    pages.follow(pages.button("Yes, subscribe me"), "You are subscribed")
    assert "daily digest" in pages.text() and "07:00 (UTC)" in pages.text()
    pages.shot("confirmed")

    # Preferences, reached from the confirmation page.
    pages.follow(
        browser.find_element(By.PARTIAL_LINK_TEXT, "Set your interests"), "Your preferences"
    )
    assert pages.field("interests").get_attribute("value") == "diffusion, language models"
    preferences_url = browser.current_url
    pages.shot("preferences")
    send_hour = due_send_hour(TIMEZONE)
    pages.type("interests", "video generation, reinforcement learning, diffusion")
    pages.type("papers_per_digest", "3")
    pages.type("timezone", TIMEZONE)
    Select(pages.field("send_hour")).select_by_value(str(send_hour))
    pages.follow(pages.button("Save preferences"), "Your preferences")
    assert browser.find_element(By.CSS_SELECTOR, "[role=status]").text == (
        "Your preferences are saved."
    )
    pages.shot("preferences-saved")

    # Opened again, the page shows what was saved; so does the operator's list.
    pages.open(preferences_url)
    assert pages.field("interests").get_attribute("value") == (
        "video generation, reinforcement learning, diffusion"
    )
    assert pages.field("papers_per_digest").get_attribute("value") == "3"
    assert pages.field("timezone").get_attribute("value") == TIMEZONE
    selected = Select(pages.field("send_hour")).first_selected_option
    assert selected.get_attribute("value") == str(send_hour)
    assert subscriber_line(site)[1:4] == ["active", "daily", f"{send_hour:02d}:00 {TIMEZONE}"]

    # A real digest: ingest the sample, then send what is due at the reader's local hour.
    site.cli("ingest")
    sent = site.cli("send-due")
    assert sent.stdout.startswith("1 digest(s) were due"), sent.stdout
    _, digest = wait_for_mail(smtp_sink, 2)
    assert digest["To"] == EMAIL and "List-Unsubscribe-Post" in digest
    header = digest["List-Unsubscribe"]
    found = re.search(r"<(http://[^>]+/unsubscribe/[^>]+)>", header)
    assert found, header
    unsubscribe_url = found.group(1)

    # Their own papers from a BibTeX file (titles of sampled papers: no arXiv request),
    # chosen in the file input and posted as multipart, as a browser does.
    library = site.workdir / "mine.bib"
    library.write_text(
        "@inproceedings{cai2019,\n  title = {{ProxylessNAS}: Direct Neural Architecture"
        " Search on Target Task and Hardware},\n}\n@misc{broken, title = {never closed\n",
        encoding="utf-8",
    )
    pages.open(preferences_url)
    pages.field("library_file").send_keys(str(library))
    pages.follow(pages.button("Add these papers"), "Your preferences")
    report = browser.find_element(By.CSS_SELECTOR, "div[role=status]").text.splitlines()
    assert report == [
        "1 paper(s) added to your references",
        "not understood: file line 4: BibTeX entry not understood (a “{” is never closed)",
    ]
    listed = browser.find_element(By.CSS_SELECTOR, "ul.references").text
    assert listed.startswith("ProxylessNAS: Direct Neural Architecture Search")
    pages.shot("preferences-library")
    pages.follow(pages.button("Remove"), "Your preferences")
    assert browser.find_elements(By.CSS_SELECTOR, "ul.references") == []

    # The digest as the reader sees it (opened as a file), three papers as chosen.
    preview = site.workdir / "digest.html"
    preview.write_text(html_part(digest), encoding="utf-8")
    pages.open(preview.as_uri())
    papers = browser.find_elements(By.CSS_SELECTOR, ".paper h2")
    assert len(papers) == 3
    assert "matches:" in browser.find_element(By.CSS_SELECTOR, ".reason").text
    pages.shot("digest-email")
    footer_link = browser.find_element(By.LINK_TEXT, "Unsubscribe")
    assert footer_link.get_attribute("href") == unsubscribe_url

    # Unsubscribe from the digest's own link: a page first, then the button.
    pages.follow(footer_link, "Unsubscribe from digest?")
    assert subscriber_line(site)[1] == "active"
    pages.shot("unsubscribe")
    pages.follow(pages.button("Unsubscribe"), "You are unsubscribed")
    assert EMAIL in pages.text()
    pages.shot("unsubscribed")
    assert subscriber_line(site)[1] == "unsubscribed"

    assert pages.console_errors() == []
    assert site.web.alive(), site.web.report()


def test_the_mail_viewer_of_digest_serve_on_a_phone_and_a_desktop(
    tmp_path: Path, browser: webdriver.Chrome
) -> None:
    """``digest serve`` alone: subscribe, read the confirmation in /mailbox, confirm from
    the link inside the framed email (it opens the site in a new tab)."""
    port, smtp_port = free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")},
        "DIGEST_ENVIRONMENT": "test",
        "DIGEST_SECRET_KEY": "browser-test-secret-key",
        "DIGEST_DATA_DIR": str(tmp_path / "data"),
        "DIGEST_SOURCES": "sample",
        "DIGEST_RANKING_FILE": str(tmp_path / "ranking.toml"),
    }
    (tmp_path / "ranking.toml").write_text('[relevance]\nsemantic = "off"\n', encoding="utf-8")
    base_url = f"http://127.0.0.1:{port}"
    pages = Pages(browser, ARTIFACTS / "mailbox")
    with digest_serve(env, tmp_path, port, smtp_port, "--no-schedule") as serve:
        pages.open(f"{base_url}/mailbox")
        assert pages.heading() == "Mailbox" and "No email yet" in pages.text()
        pages.open(f"{base_url}/")
        pages.type("email", EMAIL)
        pages.follow(pages.button("Subscribe"), "Check your inbox")

        pages.open(f"{base_url}/mailbox")
        assert EMAIL in pages.text() and "Confirm your digest subscription" in pages.text()
        pages.shot("mailbox")
        pages.follow(
            browser.find_element(By.LINK_TEXT, "Confirm your digest subscription"),
            "Confirm your digest subscription",
        )
        frame = browser.find_element(By.CSS_SELECTOR, "iframe.email")
        assert "allow-scripts" not in (frame.get_attribute("sandbox") or "")
        pages.shot("mailbox-message")

        # The email's own "Confirm" link, clicked inside the sandboxed frame.
        browser.switch_to.frame(frame)
        confirm = browser.find_element(By.PARTIAL_LINK_TEXT, "Confirm")
        tabs = set(browser.window_handles)
        confirm.click()
        browser.switch_to.default_content()
        assert wait_for(lambda: len(browser.window_handles) > len(tabs), timeout=15)
        (new_tab,) = set(browser.window_handles) - tabs
        browser.switch_to.window(new_tab)
        assert wait_for(lambda: pages.heading() == "Confirm your subscription", timeout=15)
        pages.follow(pages.button("Yes, subscribe me"), "You are subscribed")

        # The same pages on a desktop screen. Chromedriver's phone emulation is set again
        # on each navigation: the desktop's metrics go after it.
        def desktop() -> None:
            browser.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride",
                {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False},
            )

        pages.open(f"{base_url}/mailbox")
        desktop()
        pages.shot("mailbox-desktop", width=1280)
        message_url = browser.find_element(
            By.LINK_TEXT, "Confirm your digest subscription"
        ).get_attribute("href")
        assert message_url
        pages.open(message_url)
        desktop()
        pages.shot("mailbox-message-desktop", width=1280)
        pages.open(message_url + "?part=raw")
        desktop()
        assert "Return-Path:" in pages.text()
        pages.shot("mailbox-source-desktop", width=1280)

        assert pages.console_errors() == []
        assert serve.alive(), serve.report()


def test_a_digest_its_web_view_and_the_trending_day_in_light_and_dark(
    site: Site, smtp_sink: SmtpSink, browser: webdriver.Chrome
) -> None:
    """What a reader sees of one digest: the email, its "View in browser" page, the public
    trending day and the private feed, at phone and desktop widths, light and dark."""
    added = site.cli(
        "subscribers",
        "add",
        EMAIL,
        "--confirmed",
        "--interests",
        "diffusion, language models",
        "--timezone",
        "UTC",
        "--send-hour",
        str(due_send_hour("UTC")),
    )
    assert added.returncode == 0, added.stderr
    assert site.cli("ingest").returncode == 0
    assert site.cli("send-due").returncode == 0
    (digest,) = wait_for_mail(smtp_sink, 1)
    email_file = site.workdir / "digest.html"
    email_file.write_text(html_part(digest), encoding="utf-8")
    view_url = link_in(digest, site.base_url, "/digests/")
    preferences_url = link_in(digest, site.base_url, "/preferences/")
    pages = Pages(browser, ARTIFACTS / "digest")
    pages.open(preferences_url)
    feed_url = pages.field("feed_url").get_attribute("value")
    assert feed_url and "/feeds/" in feed_url

    def look(scheme: str, width: int) -> None:
        # Chromedriver applies its phone metrics again at each navigation: these go after.
        if width != PHONE["width"]:
            browser.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False},
            )
        browser.execute_cdp_cmd(
            "Emulation.setEmulatedMedia",
            {"media": "screen", "features": [{"name": "prefers-color-scheme", "value": scheme}]},
        )
        assert browser.execute_script(
            "return matchMedia('(prefers-color-scheme: dark)').matches"
        ) == (scheme == "dark"), f"the browser does not emulate {scheme} mode"

    backgrounds: dict[str, str] = {}
    page_backgrounds: dict[str, str] = {}
    for scheme in ("light", "dark"):
        for width in (PHONE["width"], 1280):
            pages.open(email_file.as_uri())
            look(scheme, width)
            backgrounds[scheme] = browser.execute_script(
                "return getComputedStyle(document.querySelector('.wrapper') || document.body)"
                ".backgroundColor"
            )
            pages.shot(f"email-{scheme}-{width}", width=width)
            pages.open(view_url)
            look(scheme, width)
            assert digest["Subject"].split(" + ")[0][:30] in pages.text()
            pages.shot(f"web-view-{scheme}-{width}", width=width)
            pages.open(f"{site.base_url}/trending")
            look(scheme, width)
            assert pages.heading().startswith("Trending papers")
            page_backgrounds[scheme] = browser.execute_script(
                "return getComputedStyle(document.body).backgroundColor"
            )
            pages.shot(f"trending-{scheme}-{width}", width=width)
    # The email and the site follow the reader's dark mode (prefers-color-scheme styles).
    assert backgrounds["light"] != backgrounds["dark"]
    assert page_backgrounds["light"] != page_backgrounds["dark"]
    # The private feed as a browser shows it: well-formed XML, one entry for the digest.
    pages.open(feed_url)
    assert "<entry>" in browser.page_source or "entry" in pages.text()
    path = ARTIFACTS / "digest" / "feed.png"
    image = browser.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})
    path.write_bytes(base64.b64decode(image["data"]))
    assert pages.console_errors() == []
