"""Browser tests: a real uvicorn server (fresh SQLite, users with passwords and API tokens)
and Debian's headless Chromium driven by Playwright's sync API.

Outside CI the tests skip with the reason when /usr/bin/chromium is missing; in CI (``CI``
set, as ``.ci/run`` does) they must run. Every test saves a screenshot under
``test-artifacts/browser/``. Waiting is on events (Playwright's ``expect``), never sleeps.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
from pathlib import Path

import pytest

from tests.support.servers import ROOT, manage

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
SIGN_IN_USERS = ("alice", "bob")
PASSWORD_ATTEMPTS = 3

SET_PASSWORDS = """
from django.contrib.auth import get_user_model
for user in get_user_model().objects.filter(username__in={users!r}):
    user.set_password("pw-" + user.username)
    user.save()
"""


@pytest.fixture(scope="package")
def chromium_path() -> Path:
    if not CHROMIUM.exists():
        reason = f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium; .ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture(scope="package")
def ui_server(chromium_path, make_server):
    """One uvicorn server (what ./run serves with) for every browser test; tests use their own rooms.

    The template database's users get passwords, to sign in through the login page.
    """
    server = make_server(server="uvicorn", SPECTATOR_PASSWORD_MAX_ATTEMPTS=str(PASSWORD_ATTEMPTS))
    manage(server.process.env, "shell", "-c", SET_PASSWORDS.format(users=SIGN_IN_USERS))
    server.start()
    yield server
    server.stop()


# Package scope, not session: Playwright's sync API keeps an event loop running in this
# thread while it is open, which would break the asyncio tests that run after these.
@pytest.fixture(scope="package")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium_path), args=LAUNCH_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="package")
def signed_in_state(browser, ui_server, tmp_path_factory):
    """Sign each user in once through the login page; contexts reuse the session cookie."""
    states: dict[str, str] = {}

    def state(user: str) -> str:
        if user not in states:
            context = browser.new_context(base_url=ui_server.url)
            page = context.new_page()
            page.goto("/accounts/login/")
            page.fill("#id_username", user)
            page.fill("#id_password", f"pw-{user}")
            page.click("button[type=submit]")
            page.wait_for_url(re.compile(r".*/my/$"))
            path = tmp_path_factory.mktemp("state") / f"{user}.json"
            context.storage_state(path=str(path))
            context.close()
            states[user] = str(path)
        return states[user]

    return state


@pytest.fixture
def new_page(browser, ui_server, signed_in_state):
    """Open a page in a fresh context (anonymous, or signed in as ``user``).

    After the test, no page may have thrown or hit the Content-Security-Policy.
    """
    contexts = []
    problems: list[str] = []

    def make(user: str | None = None, **context_options):
        context = browser.new_context(
            base_url=ui_server.url,
            storage_state=signed_in_state(user) if user else None,
            viewport=context_options.pop("viewport", {"width": 1440, "height": 900}),
            **context_options,
        )
        context.set_default_timeout(5000)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        page.on(
            "console",
            lambda message: (
                problems.append(f"console: {message.text}")
                if message.type == "error" and "Content Security Policy" in message.text
                else None
            ),
        )
        page.on("dialog", lambda dialog: dialog.accept())
        return page

    yield make
    for context in contexts:
        context.close()
    assert not problems, problems


@pytest.fixture
def shot(request):
    """Save a screenshot under test-artifacts/browser/<test name>[-<label>].png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def save(page, label: str = "", **options) -> Path:
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name) + (f"-{label}" if label else "")
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), **options)
        return path

    return save


class Trainer:
    """The client package (``SpectatorManager``) on its own event loop thread, for sync tests."""

    def __init__(self, url: str, token: str):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="trainer", daemon=True)
        self.thread.start()
        self.manager = self.run(self._manager(url, token))

    @staticmethod
    async def _manager(url: str, token: str):
        from spectator_client import SpectatorManager

        return SpectatorManager(server_url=url, api_token=token)

    def run(self, coroutine, timeout: float = 20):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        self.run(self.manager.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture(scope="package")
def trainer(ui_server) -> Trainer:
    """alice's training script: creates rooms and pushes metrics, decisions and frames."""
    trainer = Trainer(ui_server.url, ui_server.tokens["alice"])
    yield trainer
    trainer.close()


@pytest.fixture
def make_room(trainer, request):
    """Create a room for a fresh training session of alice's (the client package's call)."""
    counter = {"n": 0}

    def make(*, name: str = "", algorithm: str = "DQN", total_episodes: int | None = 500, **access):
        from spectator_client import RoomAccessControl

        counter["n"] += 1
        slug = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name)[:40].strip("-")
        training_session_id = f"{slug}-{counter['n']}-{os.getpid()}"
        return trainer.run(
            trainer.manager.create_spectator_session(
                training_session_id,
                name=name,
                algorithm=algorithm,
                total_episodes=total_episodes,
                access_control=RoomAccessControl(**access) if access else None,
            )
        )

    return make
