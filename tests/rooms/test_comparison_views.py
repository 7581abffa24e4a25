"""The comparison page (``/compare/?sessions=a,b``), the ways to reach it, and the download links.

Who may open it, what it hands its script, and user text shown as text (the browser tests
drive the script).
"""

import json

import pytest
from django.test import Client

from metrics.services import training_session_create
from rooms.access import Visitor
from rooms.services import room_join, room_leave

pytestmark = pytest.mark.django_db

XSS = '<script>alert("run")</script>'


def compare_data(response) -> dict:
    """The JSON the comparison page hands its script (Django's json_script)."""
    after = response.content.decode().split('id="compare-data" type="application/json">')[1]
    return json.loads(after.split("</script>")[0])


@pytest.fixture
def other_session(owner):
    session, _ = training_session_create(owner=owner, id="cartpole-ppo", name="CartPole PPO", algorithm="PPO")
    return session


def test_owner_compares_two_runs(client, owner, training_session, other_session):
    client.force_login(owner)
    response = client.get("/compare/", {"sessions": f"{other_session.pk},{training_session.pk}"})
    assert response.status_code == 200
    data = compare_data(response)
    assert [run["id"] for run in data["runs"]] == ["cartpole-ppo", "cartpole-dqn"]
    assert [run["label"] for run in data["runs"]] == ["CartPole PPO", "CartPole DQN"]
    assert data["runs"][1]["history_url"] == "/api/v1/sessions/cartpole-dqn/history/"
    assert data["runs"][1]["summary_url"] == "/api/v1/sessions/cartpole-dqn/summary/"
    assert data["comparison_url"] == "/api/v1/compare/" and data["poll_ms"] > 0
    body = response.content.decode()
    assert body.count('<tr data-run="') == 2
    assert 'href="/api/v1/sessions/cartpole-ppo/metrics.ndjson"' in body
    assert 'id="comparison-replay"' in body and "data-comparison-replay" in body


def test_the_picker_checkboxes_reach_the_same_page(client, owner, training_session, other_session):
    client.force_login(owner)
    response = client.get(f"/compare/?sessions={training_session.pk}&sessions={other_session.pk}")
    assert response.status_code == 200
    assert [run["id"] for run in compare_data(response)["runs"]] == ["cartpole-dqn", "cartpole-ppo"]


def test_fewer_than_two_runs_open_the_picker(client, owner, training_session, other_session):
    client.force_login(owner)
    response = client.get("/compare/", {"sessions": training_session.pk})
    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="compare-data"' not in body
    assert f'value="{training_session.pk}" id="pick-1" checked' in body
    assert f'value="{other_session.pk}" id="pick-2">' in body
    assert client.get("/compare/").status_code == 200


def test_more_than_four_runs_are_refused(client, owner):
    client.force_login(owner)
    ids = [training_session_create(owner=owner, id=f"run-{i}")[0].pk for i in range(5)]
    response = client.get("/compare/", {"sessions": ",".join(ids)})
    assert response.status_code == 400
    assert "Compare at most 4 runs at once (you picked 5)." in response.content.decode()


def test_a_run_the_visitor_may_not_read_looks_missing(client, make_user, training_session, other_session):
    stranger = make_user("stranger")
    training_session_create(owner=stranger, id="strangers-run")
    client.force_login(stranger)
    hidden = client.get("/compare/", {"sessions": f"strangers-run,{training_session.pk}"})
    missing = client.get("/compare/", {"sessions": "strangers-run,no-such-run"})
    assert hidden.status_code == missing.status_code == 404
    assert "No training session “cartpole-dqn” that you can watch." in hidden.content.decode()
    assert "No training session “no-such-run” that you can watch." in missing.content.decode()
    assert "CartPole" not in hidden.content.decode()
    anonymous = Client().get("/compare/", {"sessions": f"{training_session.pk},{other_session.pk}"})
    assert anonymous.status_code == 404


def test_spectators_compare_the_runs_they_watch(client, make_user, make_room, training_session, other_session):
    viewer = make_user("viewer")
    first = room_join(room=make_room(), visitor=Visitor(user=viewer)).spectator
    second = room_join(room=make_room(training_session=other_session), visitor=Visitor(user=viewer)).spectator
    client.force_login(viewer)
    response = client.get("/compare/", {"sessions": f"{training_session.pk},{other_session.pk}"})
    assert response.status_code == 200
    picker = client.get("/compare/").content.decode()
    assert "CartPole DQN" in picker and "CartPole PPO" in picker
    room_leave(spectator=first)
    room_leave(spectator=second)
    assert client.get("/compare/", {"sessions": f"{training_session.pk},{other_session.pk}"}).status_code == 404
    assert "CartPole" not in client.get("/compare/").content.decode()


def test_anonymous_spectators_through_the_join_session(client, make_room, training_session, other_session):
    for session in (training_session, other_session):
        room = make_room(training_session=session)
        assert client.post(f"/api/v1/rooms/{room.code}/join/", {"display_name": "Guest"}).status_code == 200
    response = client.get("/compare/", {"sessions": f"{training_session.pk},{other_session.pk}"})
    assert response.status_code == 200


def test_run_names_are_escaped(client, owner, training_session):
    evil, _ = training_session_create(owner=owner, id="evil-run", name=XSS, algorithm='"><img src=x>')
    client.force_login(owner)
    for response in (
        client.get("/compare/", {"sessions": f"{training_session.pk},{evil.pk}"}),
        client.get("/compare/", {"sessions": evil.pk}),
        client.get("/my/"),
    ):
        body = response.content.decode()
        assert XSS not in body and "<img src=x>" not in body
        assert "&lt;script&gt;alert(&quot;run&quot;)&lt;/script&gt;" in body
    data = compare_data(client.get("/compare/", {"sessions": f"{training_session.pk},{evil.pk}"}))
    assert data["runs"][1]["label"] == XSS


def test_an_id_is_shown_escaped_and_cut(client, owner):
    client.force_login(owner)
    response = client.get("/compare/", {"sessions": "<b>" + "x" * 200})
    assert response.status_code == 404
    body = response.content.decode()
    assert "<b>xxx" not in body and "&lt;b&gt;" + "x" * 60 in body and "x" * 100 not in body


def test_comparison_page_loads_only_its_own_script(client, owner, training_session, other_session):
    client.force_login(owner)
    response = client.get("/compare/", {"sessions": f"{training_session.pk},{other_session.pk}"})
    assert "script-src 'self'" in response["Content-Security-Policy"]
    body = response.content.decode()
    assert "<script>" not in body and ' style="' not in body and " onclick=" not in body
    assert '<script type="module" src="/static/spectator/compare.js">' in body


# --- The ways in, and the download links ------------------------------------------------------


def test_my_home_picks_sessions_to_compare(client, owner, training_session, other_session):
    client.force_login(owner)
    body = client.get("/my/").content.decode()
    assert 'id="compare-form" method="get" action="/compare/"' in body
    for session in (training_session, other_session):
        assert f'name="sessions" value="{session.pk}" form="compare-form"' in body


def test_room_page_offers_downloads_and_comparison(client, make_room, training_session):
    room = make_room()
    body = client.get(f"/r/{room.code}/").content.decode()
    for export_format in ("csv", "json", "ndjson"):
        assert f'href="/api/v1/sessions/cartpole-dqn/metrics.{export_format}" data-export="{export_format}"' in body
    assert 'href="/compare/?sessions=cartpole-dqn"' in body
    data = json.loads(body.split('id="room-data" type="application/json">')[1].split("</script>")[0])
    assert data["training_session"]["history_url"] == "/api/v1/sessions/cartpole-dqn/history/"


def test_owner_room_page_offers_downloads(client, make_room, owner):
    room = make_room()
    client.force_login(owner)
    body = client.get(f"/my/rooms/{room.code}/").content.decode()
    for export_format in ("csv", "json", "ndjson"):
        assert f'href="/api/v1/sessions/cartpole-dqn/metrics.{export_format}"' in body


def test_download_links_reach_the_export_for_an_admitted_spectator(client, make_room, training_session):
    room = make_room()
    page = client.get(f"/r/{room.code}/").content.decode()
    link = page.split('data-export="csv"')[0].rsplit('href="', 1)[1].split('"')[0]
    assert client.get(link).status_code == 404
    assert client.post(f"/api/v1/rooms/{room.code}/join/", {"display_name": "Guest"}).status_code == 200
    response = client.get(link)
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment; filename=")
