"""Moderation in real browsers: admit everyone waiting from the owner page (the waiting
spectators see their place and the owner's message, then go live without a reload; back to the
waiting room and a timeout), a one-click invite link into a password room, and the live room
page's owner panel: admit all and lock/unlock without leaving the game."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.support import expect_live

pytestmark = pytest.mark.browser


def request_to_join(page, code: str, name: str) -> None:
    page.goto(f"/r/{code}/")
    expect(page.locator("#screen-request")).to_be_visible()
    page.fill("#request-name", name)
    page.click("#request-form button[type=submit]")
    expect(page.locator("#screen-waiting")).to_be_visible()
    page.evaluate("window.__samePage = true")


def test_admit_all_from_the_owner_page_takes_the_waiting_room_live(new_page, make_room, shot):
    session = make_room(name="Waiting room run", require_approval=True)
    owner = new_page("alice")
    owner.goto(f"/my/rooms/{session.room_code}/")
    owner.fill("#waiting-message-input", "We start in a minute <b>promise</b>")
    with owner.expect_response(lambda response: response.url.endswith("/access/")):
        owner.click("#waiting-form button[type=submit]")
    expect(owner.locator("#moderation-status")).to_have_text("Saved.")

    first, second = new_page(), new_page()
    request_to_join(first, session.room_code, "First Viewer")
    request_to_join(second, session.room_code, "Second Viewer")
    expect(first.locator("#waiting-place")).to_have_text("You are next in line.")
    expect(second.locator("#waiting-place")).to_have_text("You are number 2 in line.")
    # The owner's words arrive as text, never as markup.
    expect(second.locator("#waiting-message")).to_have_text("We start in a minute <b>promise</b>")
    assert second.locator("#waiting-message b").count() == 0
    shot(second, "waiting")

    expect(owner.locator("#pending-list .request")).to_have_count(2)
    owner.click("#admit-all")
    expect(owner.locator("#moderation-status")).to_have_text("Admitted 2 spectators.")

    for page in (first, second):
        expect_live(page)
        assert page.evaluate("window.__samePage === true"), "the page reloaded"
    expect(owner.locator("#pending-list .request")).to_have_count(0)
    expect(owner.locator("#spectator-list")).to_contain_text("Second Viewer")
    expect(owner.locator("#audit-rows tr[data-action='admit_all']")).to_have_count(1)
    expect(owner.locator("#audit-rows tr[data-action='admit']")).to_have_count(2)
    shot(owner, "owner")

    # Back to the waiting room: the spectator's page waits again (socket closed with 4202).
    owner.get_by_role("button", name="Send First Viewer back to the waiting room").click()
    expect(first.locator("#screen-waiting")).to_be_visible()
    expect(first.locator("#waiting-place")).to_have_text("You are next in line.")
    owner.get_by_role("button", name="Approve First Viewer").click()
    expect_live(first)
    # A timeout ends the watch and says why.
    owner.get_by_role("button", name="Time out Second Viewer").click()
    expect(second.locator("#screen-refused")).to_be_visible()
    expect(second.locator("#refused-title")).to_have_text("You are timed out")
    expect(owner.locator("#timeout-list")).to_contain_text("Second Viewer")
    for page in (first, second):
        assert page.evaluate("window.__samePage === true"), "the page reloaded"


def test_one_click_invite_link_into_a_password_room(new_page, make_room, shot):
    session = make_room(name="Invite link run", access_level="password", password="hard-to-guess")
    owner = new_page("alice")
    owner.goto(f"/my/rooms/{session.room_code}/")
    owner.fill("#link-label", "Team")
    expect(owner.locator("#link-password")).to_be_checked()
    with owner.expect_response(lambda response: response.url.endswith("/invite-links/") and response.status == 201):
        owner.click("#link-form button[type=submit]")
    # The page fills the field after the response arrives: wait for it, then read it.
    expect(owner.locator("#new-link-url")).to_have_value(re.compile(re.escape(f"/r/{session.room_code}/?invite=")))
    url = owner.locator("#new-link-url").input_value()
    expect(owner.locator("#link-list")).to_contain_text("Team")

    guest = new_page()
    guest.goto(url)
    expect_live(guest)  # no password typed
    expect(guest.locator("#screen-password")).to_be_hidden()
    shot(guest, "live")

    # Revoked, the same link explains itself instead of letting anyone in.
    owner.get_by_role("button", name="Revoke Team").click()
    expect(owner.locator("#link-empty")).to_be_visible()
    late = new_page()
    late.goto(url)
    expect(late.locator("#screen-refused")).to_be_visible()
    expect(late.locator("#refused-detail")).to_contain_text("invite link")


def test_the_live_rooms_owner_panel_admits_everyone_waiting_and_locks_the_room(new_page, make_room, shot):
    session = make_room(name="Live panel run", require_approval=True)
    code = session.room_code
    owner = new_page("alice")
    owner.goto(f"/r/{code}/")
    expect_live(owner)
    expect(owner.locator("#admit-all")).to_be_hidden()

    first, second = new_page(), new_page()
    request_to_join(first, code, "First Viewer")
    request_to_join(second, code, "Second Viewer")
    expect(owner.locator("#pending-list .request")).to_have_count(2)
    owner.click("#admit-all")
    for page in (first, second):
        expect_live(page)
        assert page.evaluate("window.__samePage === true"), "the page reloaded"
    expect(owner.locator("#pending-list .request")).to_have_count(0)
    expect(owner.locator("#admit-all")).to_be_hidden()

    owner.click("#lock-toggle")
    expect(owner.locator("#lock-toggle")).to_have_text("Unlock room")
    expect(owner.locator("#lock-state")).to_be_visible()
    shot(owner, "locked")
    late = new_page()
    late.goto(f"/r/{code}/")
    expect(late.locator("#screen-refused")).to_be_visible()
    expect(first.locator("#conn-state")).to_have_attribute("data-state", "live")  # those inside stay
    owner.click("#lock-toggle")
    expect(owner.locator("#lock-toggle")).to_have_text("Lock room")
    expect(owner.locator("#lock-state")).to_be_hidden()
    late.reload()
    expect(late.locator("#screen-request")).to_be_visible()
