"""Joining: passwords (wrong, right, lockout) and approval across two browsers."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD_ATTEMPTS
from tests.browser.support import expect_live

pytestmark = pytest.mark.browser


def submit_password(page, password: str) -> None:
    """Type a password and submit it, waiting for the join API's answer."""
    page.fill("#room-password", password)
    with page.expect_response(lambda response: response.url.endswith("/join/")):
        page.click("#password-submit")


def test_password_wrong_then_right_and_lockout(new_page, make_room, shot):
    session = make_room(name="Secret run", access_level="password", password="correct-pass")
    page = new_page()
    page.goto(f"/r/{session.room_code}/")
    error = page.locator("#password-error")

    submit_password(page, "not-it")
    expect(error).to_contain_text("Wrong password")
    expect(page.locator("#room-password")).to_have_attribute("aria-invalid", "true")
    shot(page, "wrong")

    submit_password(page, "correct-pass")
    expect_live(page)

    # Guessing: after the allowed wrong attempts the prompt says so and stops taking input.
    other = make_room(name="Guarded run", access_level="password", password="correct-pass")
    guesser = new_page()
    guesser.goto(f"/r/{other.room_code}/")
    for attempt in range(PASSWORD_ATTEMPTS):
        submit_password(guesser, f"guess-{attempt}")
        expect(guesser.locator("#password-error")).to_contain_text("Wrong password")
    submit_password(guesser, "guess-last")
    expect(guesser.locator("#password-error")).to_contain_text("Too many wrong passwords")
    expect(guesser.locator("#password-error")).to_contain_text("try again in")
    expect(guesser.locator("#room-password")).to_be_disabled()
    shot(guesser, "lockout")


def test_approval_waits_then_goes_live_without_reload(new_page, make_room, shot):
    session = make_room(name="Approval run", require_approval=True)
    owner = new_page("alice")
    owner.goto(f"/r/{session.room_code}/")
    expect_live(owner)
    expect(owner.locator("#owner-panel")).to_be_visible()

    spectator = new_page()
    spectator.goto(f"/r/{session.room_code}/")
    expect(spectator.locator("#screen-request")).to_be_visible()
    spectator.fill("#request-name", "Viewer One")
    spectator.fill("#request-message", "I am on the team")
    spectator.click("#request-form button[type=submit]")
    expect(spectator.locator("#screen-waiting")).to_be_visible()
    spectator.evaluate("window.__samePage = true")

    # The owner's pending list shows the request live (no reload), with approve and deny.
    request = owner.locator("#pending-list .request", has_text="Viewer One")
    expect(request).to_be_visible()
    expect(request).to_contain_text("I am on the team")
    shot(owner, "owner")
    request.get_by_role("button", name="Approve Viewer One").click()

    expect_live(spectator)
    assert spectator.evaluate("window.__samePage === true"), "the page reloaded"
    expect(owner.locator("#pending-list .request")).to_have_count(0)
    expect(owner.locator("#spectator-list")).to_contain_text("Viewer One")
    shot(spectator, "approved")

    # A denied request says so.
    denied = new_page()
    denied.goto(f"/r/{session.room_code}/")
    denied.fill("#request-name", "Viewer Two")
    denied.click("#request-form button[type=submit]")
    expect(denied.locator("#screen-waiting")).to_be_visible()
    owner.get_by_role("button", name="Deny Viewer Two").click()
    expect(denied.locator("#screen-refused")).to_be_visible()
    expect(denied.locator("#refused-title")).to_have_text("Your request was declined")
    shot(denied, "denied")
