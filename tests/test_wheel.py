"""`pip install .`, not editable: the wheel alone runs digest from any directory.

The wheel is built from what the Dockerfile's build stage copies, and installed
into a new virtual environment that reaches this one's dependencies (a ``.pth``
file: no network, no reinstall) but not the checkout. From a directory outside
the checkout its ``digest`` migrates, runs the demo (templates, sample papers,
config/*.toml), serves the pages and sends a digest from a worker.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from digest.mail.sink import SmtpSink, free_port, read_eml
from digest.processes import Process, run_to_end, start_process, stop_all, wait_for
from tests.dockerfile import build_and_final_stages, copied_sources
from tests.paths import PROJECT_ROOT
from tests.services import RedisDatabase, empty_redis_database

pytestmark = pytest.mark.services

PACKAGES = ("config", "digest", "workers")
# What the packages and templates/ hold that the processes read.
PACKAGE_FILES = {".py", ".toml", ".json", ".mako"}
TEMPLATE_FILES = {".html", ".txt", ".css"}


@dataclass(frozen=True)
class Installed:
    """A virtual environment holding the wheel, and a working directory outside the checkout."""

    venv: Path
    workdir: Path
    ranking_file: Path

    @property
    def digest(self) -> str:
        return str(self.venv / "bin" / "digest")

    def env(self, **digest_settings: str) -> dict[str, str]:
        # No checkout on the path and no developer settings: what a fresh install sees.
        keep = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DIGEST_", "PYTHON")) and k != "VIRTUAL_ENV"
        }
        return {**keep, "DIGEST_RANKING_FILE": str(self.ranking_file), **digest_settings}

    def run(self, *args: str, **digest_settings: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.digest, *args],
            cwd=self.workdir,
            env=self.env(**digest_settings),
            capture_output=True,
            text=True,
            timeout=120,
        )

    def start(self, name: str, *args: str, **digest_settings: str) -> Process:
        return start_process(
            name, [self.digest, *args], workdir=self.workdir, env=self.env(**digest_settings)
        )


def build_context(destination: Path) -> Path:
    """The files the Dockerfile's build stage copies, laid out as it copies them."""
    build, _ = build_and_final_stages()
    for source, target in copied_sources(build):
        origin = PROJECT_ROOT / source
        placed = destination / target / source if target.endswith("/") else destination / target
        if origin.is_dir():
            shutil.copytree(origin, placed, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            placed.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, placed)
    return destination


def pip(python: Path | str, *args: str, cwd: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    run_to_end(
        [str(python), "-m", "pip", *args, "--no-deps", "--no-index", "--quiet"],
        env=env,
        cwd=cwd,
        timeout=180,
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Built from a copy: a build in the checkout would leave build/ there, and stale
    # files in it from a previous build would end up in the wheel.
    source = build_context(tmp_path_factory.mktemp("context"))
    out = tmp_path_factory.mktemp("dist")
    pip(sys.executable, "wheel", "--no-build-isolation", "--wheel-dir", str(out), ".", cwd=source)
    [built] = out.glob("digest-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    venv = tmp_path_factory.mktemp("venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site_packages = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    # This environment's dependencies (and pip), after the new one's own packages. A
    # path in a .pth file is not a site directory: the .pth files there, among them
    # the editable install's finder for the checkout, are not run.
    ours = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    (site_packages / "dependencies.pth").write_text("".join(f"{path}\n" for path in ours))
    # --ignore-installed: the checkout's editable digest is visible from here, and must
    # be neither uninstalled nor taken as already installed.
    pip(python, "install", "--ignore-installed", str(wheel), cwd=venv)
    # `pip install .` brings no semantic extra, but this environment has it: the
    # installed ranking file with semantic matching off ranks as without it (and
    # spares each process loading PyTorch and the model).
    shipped = (site_packages / "config" / "ranking.toml").read_text()
    assert 'semantic = "auto"' in shipped
    lexical = venv.parent / "ranking.toml"
    lexical.write_text(shipped.replace('semantic = "auto"', 'semantic = "off"'))
    workdir = tmp_path_factory.mktemp("elsewhere")
    assert not workdir.resolve().is_relative_to(PROJECT_ROOT)
    return Installed(venv, workdir, lexical)


@pytest.fixture(scope="module")
def demo(installed: Installed) -> subprocess.CompletedProcess[str]:
    """``digest db upgrade`` then ``digest demo``, as a user would run them first."""
    upgraded = installed.run("db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    return installed.run("demo")


def test_the_wheel_holds_every_module_template_and_default_file(wheel: Path) -> None:
    # pyproject.toml lists the packages: one left out there is missing here.
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    for package in PACKAGES:
        for path in (PROJECT_ROOT / package).rglob("*"):
            if path.suffix in PACKAGE_FILES and "__pycache__" not in path.parts:
                assert path.relative_to(PROJECT_ROOT).as_posix() in names
    templates = PROJECT_ROOT / "templates"
    for path in templates.rglob("*"):
        if path.suffix in TEMPLATE_FILES:
            assert f"digest/templates/{path.relative_to(templates).as_posix()}" in names
    top_level = {name.split("/")[0] for name in names}
    assert {name for name in top_level if not name.endswith(".dist-info")} == set(PACKAGES)


# Run by the new environment's python: where each default it reads comes from.
WHERE_FROM = """
import json, config, digest, workers
from importlib import resources
from config.ranking import load_ranking_config
from config.settings import Settings
from config.sources import enabled_source_configs
from digest.db.migrate import MIGRATIONS_DIR

load_ranking_config(None)
assert enabled_source_configs(None), "no source enabled in the packaged sources.toml"
print(json.dumps({
    "config": config.__file__,
    "digest": digest.__file__,
    "workers": workers.__file__,
    "config files": str(resources.files("config")),
    "migrations": str(MIGRATIONS_DIR),
    "templates": str(Settings.from_values().templates_dir),
}))
"""


def test_the_installed_packages_are_the_wheels_not_the_checkout(installed: Installed) -> None:
    result = subprocess.run(
        [str(installed.venv / "bin" / "python"), "-c", WHERE_FROM],
        cwd=installed.workdir,
        env=installed.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    where = {name: Path(path) for name, path in json.loads(result.stdout).items()}
    for path in where.values():
        assert path.is_relative_to(installed.venv), where
    assert (where["config files"] / "sources.toml").is_file()
    assert list((where["migrations"] / "versions").glob("0001_*.py"))
    assert where["templates"] == where["digest"].parent / "templates"
    assert (where["templates"] / "email" / "digest" / "body.html").is_file()


def test_db_upgrade_and_the_demo_run_outside_the_checkout(
    installed: Installed, demo: subprocess.CompletedProcess[str]
) -> None:
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "ingest  sample: 188 new" in demo.stdout
    assert re.search(r"digest  \d{4}-\d\d-\d\d: sent, 5 papers, Message-ID <", demo.stdout)
    eml = Path(re.search(r"^email   (\S+)$", demo.stdout, re.M).group(1))  # type: ignore[union-attr]
    html = Path(re.search(r"^preview (\S+)", demo.stdout, re.M).group(1))  # type: ignore[union-attr]
    # The data folder is the working directory's, the database the one db upgrade made.
    data = installed.workdir / "data"
    assert eml.parent == html.parent == data / "mail"
    assert (data / "digest.db").is_file()
    message = read_eml(eml)
    assert message["To"] == "reader@example.com"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    page = html.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert page.count('class="paper"') == 5


def test_the_web_app_serves_the_pages_and_the_demos_links(
    installed: Installed, demo: subprocess.CompletedProcess[str]
) -> None:
    assert demo.returncode == 0, demo.stdout + demo.stderr
    port = free_port()
    web = installed.start("web", "web", "--port", str(port))
    base = f"http://127.0.0.1:{port}"
    try:

        def healthy() -> bool:
            assert web.alive(), web.report()
            try:
                return httpx.get(f"{base}/health", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        assert wait_for(healthy, timeout=30), web.report()
        assert httpx.get(f"{base}/health", timeout=5).json() == {"status": "ok", "database": "ok"}
        subscribe = httpx.get(f"{base}/", timeout=5)
        assert subscribe.status_code == 200, web.report()
        assert '<form method="post"' in subscribe.text
        # The unsubscribe link in the demo's preview works, as the README says.
        html = Path(re.search(r"^preview (\S+)", demo.stdout, re.M).group(1))  # type: ignore[union-attr]
        link = re.search(r'href="http://127\.0\.0\.1:8000(/unsubscribe/[^"]+)"', html.read_text())
        assert link, "no unsubscribe link in the preview"
        page = httpx.get(base + link.group(1), timeout=5)
        assert page.status_code == 200, web.report()
        assert "reader@example.com" in page.text
    finally:
        stop_all([web])


def test_a_worker_sends_a_due_digest(
    installed: Installed, demo: subprocess.CompletedProcess[str], smtp_sink: SmtpSink
) -> None:
    assert demo.returncode == 0, demo.stdout + demo.stderr
    reader = "worker@example.org"
    added = installed.run(
        "subscribers", "add", reader, "--confirmed", "--send-hour", "0", "--timezone", "UTC"
    )
    assert added.returncode == 0, added.stdout + added.stderr
    with empty_redis_database(RedisDatabase.WHEEL_BROKER) as broker_url:
        settings = {"DIGEST_BROKER_URL": broker_url, "DIGEST_SMTP_URL": smtp_sink.url}
        worker = installed.start("worker", "worker", "--pool=solo", "--without-gossip", **settings)
        try:
            queued = installed.run("send-due", **settings)
            assert queued.returncode == 0, queued.stdout + queued.stderr

            def delivered() -> bool:
                assert worker.alive(), worker.report()
                return any(message["To"] == reader for message in smtp_sink.messages())

            assert wait_for(delivered, timeout=60), worker.report()
        finally:
            stop_all([worker])
    [message] = smtp_sink.messages()
    assert message.get_content_type() == "multipart/alternative"
    html = message.get_body(("html",))
    assert html is not None and 'class="paper"' in html.get_content()
