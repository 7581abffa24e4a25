"""API tokens: ``create_api_token`` prints a token that authenticates; only its digest is stored."""

import hashlib
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from accounts.models import ApiToken
from accounts.selectors import api_token_user
from accounts.services import api_token_create, api_token_revoke
from tests.api_errors import assert_api_error

MINE = "/api/v1/rooms/"


def create_api_token(*args) -> str:
    out = StringIO()
    call_command("create_api_token", *args, stdout=out)
    return out.getvalue().strip()


@pytest.mark.django_db
def test_command_prints_a_token_that_authenticates(api_client):
    raw = create_api_token("alice")

    assert raw.startswith("spt_")
    assert len(raw.splitlines()) == 1
    response = api_client(token=raw).get(MINE)
    assert response.status_code == 200, response.json()
    session = api_client(token=raw).post("/api/v1/sessions/", {"id": "alices-run"}, format="json")
    assert session.json()["owner"] == "alice"


@pytest.mark.django_db
def test_command_creates_the_user_when_missing():
    create_api_token("newcomer")

    user = get_user_model().objects.get(username="newcomer")
    assert not user.is_staff
    assert not user.is_superuser
    assert not user.check_password("")


@pytest.mark.django_db
def test_command_reuses_an_existing_user(make_user):
    user = make_user("alice")

    raw = create_api_token("alice")

    assert get_user_model().objects.filter(username="alice").count() == 1
    assert api_token_user(raw) == user
    user.refresh_from_db()
    assert user.check_password("correct-horse-battery")


@pytest.mark.django_db
def test_staff_flag_makes_staff(api_client, make_room, make_user):
    raw = create_api_token("mod", "--staff")

    user = get_user_model().objects.get(username="mod")
    assert user.is_staff
    # Staff moderate every room.
    room = make_room(access_level="private")
    response = api_client(token=raw).get(f"/api/v1/rooms/{room.code}/")
    assert response.status_code == 200, response.json()
    assert response.json()["can_manage"] is True


@pytest.mark.django_db
def test_staff_flag_promotes_an_existing_user(make_user):
    make_user("alice")

    create_api_token("alice", "--staff")

    assert get_user_model().objects.get(username="alice").is_staff


@pytest.mark.django_db
def test_without_staff_flag_staff_stays_staff(make_user):
    make_user("boss", staff=True)

    create_api_token("boss")

    assert get_user_model().objects.get(username="boss").is_staff


@pytest.mark.django_db
def test_name_labels_the_token():
    create_api_token("alice", "--name", "laptop")

    assert ApiToken.objects.get().name == "laptop"


def test_username_is_required():
    with pytest.raises(CommandError):
        call_command("create_api_token", stdout=StringIO(), stderr=StringIO())


@pytest.mark.django_db
def test_only_the_digest_is_stored():
    raw = create_api_token("alice")

    token = ApiToken.objects.get()
    assert token.digest != raw
    assert token.digest == hashlib.sha256(raw.encode()).hexdigest()
    assert token.hint == raw[:12]
    stored = [str(value) for value in ApiToken.objects.values().get().values()]
    assert not any(raw in value for value in stored)


@pytest.mark.django_db
def test_each_run_makes_a_new_token():
    first, second = create_api_token("alice"), create_api_token("alice")

    assert first != second
    assert ApiToken.objects.filter(user__username="alice").count() == 2
    assert api_token_user(first) == api_token_user(second)


@pytest.mark.django_db
def test_revoked_token_stops_authenticating(api_client):
    raw = create_api_token("alice")
    api_token_revoke(token=ApiToken.objects.get())

    assert api_token_user(raw) is None
    assert_api_error(api_client(token=raw).get(MINE), 401, "authentication_failed")


@pytest.mark.django_db
def test_token_of_a_deactivated_user_stops_authenticating(api_client):
    raw = create_api_token("alice")
    get_user_model().objects.filter(username="alice").update(is_active=False)

    assert api_token_user(raw) is None
    assert_api_error(api_client(token=raw).get(MINE), 401, "authentication_failed")


@pytest.mark.django_db
@pytest.mark.parametrize("raw", ["", "spt_", "spt_unknown", "not-prefixed", "spt_" + "x" * 300])
def test_unknown_tokens_find_nobody(raw):
    api_token_create(username="alice")

    assert api_token_user(raw) is None


@pytest.mark.django_db
def test_use_records_last_used_at(api_client):
    raw = create_api_token("alice")
    assert ApiToken.objects.get().last_used_at is None

    api_client(token=raw).get(MINE)

    assert ApiToken.objects.get().last_used_at is not None


@pytest.mark.django_db
def test_str_shows_only_the_hint():
    raw = create_api_token("alice")

    text = str(ApiToken.objects.get())
    assert raw not in text
    assert raw[:12] in text
