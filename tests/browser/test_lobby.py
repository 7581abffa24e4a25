"""The lobby: public rooms with live viewer counts and progress; joining by code with the keyboard."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.support import expect_live, history

pytestmark = pytest.mark.browser


def test_lobby_lists_a_public_room_with_its_live_viewer_count(new_page, make_room, trainer, ui_server, shot):
    session = make_room(name="Lobby CartPole", algorithm="PPO", total_episodes=200)
    trainer.run(
        trainer.manager.update_training_metrics_batch(
            session.session_id, history(12, algorithm="PPO", total_episodes=200)
        )
    )
    page = new_page()
    page.goto("/")
    card = page.locator(f'.room-card[data-room-id="{session.session_id}"]')
    expect(card).to_contain_text("Lobby CartPole")
    expect(card).to_contain_text("PPO")
    expect(card.locator("[data-field=episode]")).to_have_text("Episode 12 of 200")
    expect(card.locator("[data-field=viewers]")).to_have_text("0 watching")

    # Someone takes a seat: the count changes on the open page, without a reload.
    with ui_server.api("bob") as bob:
        assert bob.post(f"rooms/{session.room_code}/join/", json={}).status_code == 200
    expect(card.locator("[data-field=viewers]")).to_have_text("1 watching", timeout=8000)
    shot(page)


def test_join_form_works_by_keyboard(new_page, make_room, shot):
    session = make_room(name="Keyboard room", access_level="password", password="open-sesame")
    page = new_page()
    page.goto("/")
    for _ in range(15):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "join-code":
            break
    assert page.evaluate("document.activeElement.id") == "join-code", "the code box is not reachable by Tab"
    page.keyboard.type(session.room_code.lower())
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf".*/r/{session.room_code}/$"))

    # The password prompt has the focus; typing and Enter take the seat.
    password = page.locator("#room-password")
    expect(password).to_be_focused()
    page.keyboard.type("open-sesame")
    page.keyboard.press("Enter")
    expect_live(page)
    shot(page)
