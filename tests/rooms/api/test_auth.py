"""Authentication: bearer tokens and browser sessions (CSRF enforced); failures are JSON 401/403."""

import pytest
from rest_framework.test import APIClient

from accounts.models import ApiToken
from accounts.services import api_token_revoke
from rooms.models import Room
from tests.api_errors import assert_api_error

MINE = "/api/v1/rooms/"


def test_valid_token_authenticates(api_client, owner, make_token):
    token = make_token(owner)

    response = api_client(token=token).get(MINE)

    assert response.status_code == 200, response.json()
    assert ApiToken.objects.get(user=owner).last_used_at is not None


def test_token_keyword_also_works(owner, make_token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {make_token(owner)}")

    assert client.get(MINE).status_code == 200


def test_token_acts_as_its_user(api_client, owner, make_token, training_session):
    response = api_client(token=make_token(owner)).post(
        MINE, {"training_session_id": training_session.id}, format="json"
    )

    assert response.status_code == 201, response.json()
    assert response.json()["creator_id"] == "owner"


@pytest.mark.parametrize(
    "header",
    [
        "Bearer spt_not-a-real-token",
        "Bearer not-even-prefixed",
        "Bearer spt_" + "x" * 300,
        "Token spt_not-a-real-token",
        "Bearer",
        "Bearer two parts",
    ],
)
def test_invalid_token_is_401_with_json(db, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    response = client.get(MINE)

    assert_api_error(response, 401, "authentication_failed")
    assert response["WWW-Authenticate"] == "Bearer"


def test_invalid_token_is_refused_even_where_anonymous_is_welcome(api_client, make_room):
    room = make_room()

    for path in ("/api/v1/rooms/public/", f"/api/v1/rooms/{room.code}/"):
        assert_api_error(api_client(token="spt_not-a-real-token").get(path), 401, "authentication_failed")
    assert_api_error(
        api_client(token="spt_not-a-real-token").post(f"/api/v1/rooms/{room.code}/join/", {}, format="json"),
        401,
        "authentication_failed",
    )


def test_revoked_token(api_client, owner, make_token):
    token = make_token(owner)
    api_token_revoke(token=ApiToken.objects.get(user=owner))

    assert_api_error(api_client(token=token).get(MINE), 401, "authentication_failed")


def test_token_of_inactive_user(api_client, owner, make_token):
    token = make_token(owner)
    owner.is_active = False
    owner.save()

    assert_api_error(api_client(token=token).get(MINE), 401, "authentication_failed")


def test_other_tokens_of_the_user_keep_working(api_client, owner, make_token):
    kept, revoked = make_token(owner), make_token(owner)
    api_token_revoke(token=ApiToken.objects.get(hint=revoked[:12]))

    assert api_client(token=kept).get(MINE).status_code == 200
    assert api_client(token=revoked).get(MINE).status_code == 401


def test_missing_credentials(db):
    response = APIClient().get(MINE)

    assert_api_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Bearer"


def test_unknown_scheme_is_treated_as_missing(db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Basic b3duZXI6cGFzcw==")

    assert_api_error(client.get(MINE), 401, "not_authenticated")


# --- Sessions ----------------------------------------------------------------------------------


@pytest.fixture
def browser(owner):
    """A signed-in browser: session cookie, CSRF enforced as in production."""
    client = APIClient(enforce_csrf_checks=True)
    assert client.login(username="owner", password="correct-horse-battery")
    return client


def csrf_token(client) -> str:
    response = client.get("/admin/login/")
    assert response.status_code == 200
    return client.cookies["csrftoken"].value


def test_session_reads_without_csrf(browser):
    assert browser.get(MINE).status_code == 200


def test_session_write_without_csrf_is_refused(browser, training_session, make_room):
    room = make_room()

    response = browser.post(MINE, {"training_session_id": training_session.id}, format="json")

    body = assert_api_error(response, 403, "permission_denied")
    assert "CSRF" in body["detail"]
    assert_api_error(browser.post(f"/api/v1/rooms/{room.code}/close/"), 403, "permission_denied")
    assert_api_error(
        browser.patch(f"/api/v1/rooms/{room.code}/access/", {"max_spectators": 2}, format="json"),
        403,
        "permission_denied",
    )
    assert Room.objects.count() == 1
    assert Room.objects.get().status == "active"


def test_session_write_with_csrf(browser, training_session):
    token = csrf_token(browser)

    response = browser.post(MINE, {"training_session_id": training_session.id}, format="json", HTTP_X_CSRFTOKEN=token)

    assert response.status_code == 201, response.json()
    assert response.json()["creator_id"] == "owner"


def test_session_write_with_a_wrong_csrf_token(browser, training_session):
    csrf_token(browser)

    response = browser.post(
        MINE, {"training_session_id": training_session.id}, format="json", HTTP_X_CSRFTOKEN="x" * 32
    )

    assert_api_error(response, 403, "permission_denied")


def test_signed_in_join_needs_csrf(browser, make_room):
    room = make_room()

    assert_api_error(browser.post(f"/api/v1/rooms/{room.code}/join/", {}, format="json"), 403, "permission_denied")
    response = browser.post(f"/api/v1/rooms/{room.code}/join/", {}, format="json", HTTP_X_CSRFTOKEN=csrf_token(browser))
    assert response.status_code == 200, response.json()


def test_anonymous_join_needs_no_csrf(make_room):
    room = make_room()

    response = APIClient(enforce_csrf_checks=True).post(f"/api/v1/rooms/{room.code}/join/", {}, format="json")

    assert response.status_code == 200, response.json()


def test_token_requests_need_no_csrf(owner, make_token, training_session):
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(owner)}")

    response = client.post(MINE, {"training_session_id": training_session.id}, format="json")

    assert response.status_code == 201, response.json()


def test_logged_out_session(browser):
    browser.logout()

    assert_api_error(browser.get(MINE), 401, "not_authenticated")


def test_wrong_password_does_not_sign_in(owner):
    client = APIClient(enforce_csrf_checks=True)

    assert not client.login(username="owner", password="wrong")
    assert_api_error(client.get(MINE), 401, "not_authenticated")
