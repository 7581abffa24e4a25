"""The moderation console: Django's admin, driven through the test client as staff would."""

from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Permission
from django.forms import MultiWidget
from django.forms.models import ModelMultipleChoiceField
from django.urls import reverse
from django.utils import timezone

from accounts.models import ApiToken
from rooms import services
from rooms.access import AccessRefused, Visitor
from rooms.models import AccessLevel, Ban, Invitation, JoinRequest, Room, Spectator

pytestmark = pytest.mark.django_db


# --- Helpers ----------------------------------------------------------------------------------


def changelist_url(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def change_url(obj) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


def listed(client, model, **params) -> set:
    """The primary keys a changelist shows for the given query parameters."""
    response = client.get(changelist_url(model), params)
    assert response.status_code == 200
    return {obj.pk for obj in response.context["cl"].result_list}


def run_action(client, model, action: str, objects) -> object:
    return client.post(
        changelist_url(model),
        {"action": action, "_selected_action": [obj.pk for obj in objects]},
        follow=True,
    )


def _field_post_values(form, name) -> dict:
    """What a browser would post for ``form[name]`` left as displayed."""
    bound = form[name]
    field = form.fields[name]
    value = bound.value()
    key = form.add_prefix(name)
    if isinstance(field.widget, MultiWidget):
        parts = field.widget.decompress(bound.initial)
        return {f"{key}_{index}": "" if part is None else str(part) for index, part in enumerate(parts)}
    if isinstance(field, ModelMultipleChoiceField):
        return {key: [str(pk) for pk in value or []]}
    if value is True:
        return {key: "on"}
    if value is False or value is None:
        return {}
    return {key: str(value)}


def change_form_data(response) -> dict:
    """POST data reproducing a change page as rendered: the main form, then every inline
    formset with its management form and one entry per initial form."""
    data = {}
    form = response.context["adminform"].form
    for name in form.fields:
        data.update(_field_post_values(form, name))
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        management = formset.management_form
        for name in management.fields:
            data[management.add_prefix(name)] = str(management[name].value())
        for inline_form in formset.forms:
            for name in inline_form.fields:
                data.update(_field_post_values(inline_form, name))
    return data


def inline_formset(response, model):
    (formset,) = [
        inline.formset for inline in response.context["inline_admin_formsets"] if inline.formset.model is model
    ]
    return formset


def join(room, user, **kwargs):
    return services.room_join(room=room, visitor=Visitor(user=user), **kwargs)


# --- Fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def moderator(make_user):
    """A staff member (not a superuser) holding the moderation permissions."""
    user = make_user("moderator", staff=True)
    codenames = [
        f"{verb}_{model}"
        for verb in ("view", "change")
        for model in ("room", "joinrequest", "spectator", "ban", "invitation", "trainingsession", "apitoken")
    ]
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


@pytest.fixture(params=["superuser", "moderator"])
def staff_client(request, client, admin_user, moderator):
    client.force_login(admin_user if request.param == "superuser" else moderator)
    client.staff_user = admin_user if request.param == "superuser" else moderator
    return client


@pytest.fixture
def full_house(make_room, make_user, owner):
    """A room of every kind, with a spectator, a pending request, a ban and an invitation."""
    public = make_room(name="public")
    approval = make_room(name="approval", require_approval=True)
    invite = make_room(name="invite", access_level=AccessLevel.INVITE_ONLY)
    viewer, waiter, banned, invited = (make_user(name) for name in ("viewer", "waiter", "banned", "invited"))
    join(public, viewer)
    join(approval, waiter)
    services.ban_create(room=public, actor=owner, user=banned)
    services.invitation_create(room=invite, username=invited.username, actor=owner)
    return {"public": public, "approval": approval, "invite": invite}


# --- Pages load ---------------------------------------------------------------------------------


def test_every_registered_changelist_and_change_page_loads(staff_client, admin_user, full_house, make_token, owner):
    make_token(owner)
    for model in admin.site._registry:
        perms = f"{model._meta.app_label}.view_{model._meta.model_name}"
        if not staff_client.staff_user.has_perm(perms):
            continue
        response = staff_client.get(changelist_url(model))
        assert response.status_code == 200, model
        obj = model._default_manager.first()
        if obj is not None:
            assert staff_client.get(change_url(obj)).status_code == 200, model


def test_superuser_sees_every_registered_model(admin_client):
    for model in admin.site._registry:
        assert admin_client.get(changelist_url(model)).status_code == 200, model


def test_staff_without_permissions_is_refused_and_non_staff_goes_to_login(client, make_user, make_room):
    room = make_room()
    client.force_login(make_user("bare-staff", staff=True))
    assert client.get(changelist_url(Room)).status_code == 403
    assert client.get(change_url(room)).status_code == 403

    client.force_login(make_user("plain"))
    for url in (changelist_url(Room), change_url(room), reverse("admin:index")):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))


def test_anonymous_is_sent_to_login(client, make_room):
    response = client.get(changelist_url(Room))
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('admin:login')}?next={changelist_url(Room)}"


def test_non_staff_cannot_run_actions(client, make_user, make_room):
    room = make_room()
    client.force_login(make_user("plain"))
    response = client.post(changelist_url(Room), {"action": "close_rooms", "_selected_action": [room.pk]})
    assert response.status_code == 302
    room.refresh_from_db()
    assert room.status == Room.Status.ACTIVE


# --- Filters and search ------------------------------------------------------------------------


def test_room_filters(admin_client, make_room, owner):
    active = make_room()
    private = make_room(access_level=AccessLevel.PRIVATE)
    closed = make_room()
    services.room_close(room=closed, actor=owner)
    stale = make_room(access_level=AccessLevel.PASSWORD)
    Room.objects.filter(pk=stale.pk).update(expires_at=timezone.now() - timedelta(minutes=1))

    assert listed(admin_client, Room) == {active.pk, private.pk, closed.pk, stale.pk}
    assert listed(admin_client, Room, status__exact="closed") == {closed.pk}
    assert listed(admin_client, Room, status__exact="active") == {active.pk, private.pk, stale.pk}
    assert listed(admin_client, Room, access_level__exact="private") == {private.pk}
    assert listed(admin_client, Room, access_level__exact="password") == {stale.pk}
    assert listed(admin_client, Room, expired="yes") == {stale.pk}
    assert listed(admin_client, Room, expired="no") == {active.pk, private.pk, closed.pk}
    assert listed(admin_client, Room, status__exact="active", expired="no") == {active.pk, private.pk}


def test_room_search_by_code_and_creator(admin_client, make_room, make_user, training_session):
    mine = make_room()
    other_creator = make_user("zelda", staff=True)
    theirs = make_room(creator=other_creator)

    assert listed(admin_client, Room, q=mine.code) == {mine.pk}
    assert listed(admin_client, Room, q=theirs.code.lower()) == {theirs.pk}
    assert listed(admin_client, Room, q="zelda") == {theirs.pk}
    assert listed(admin_client, Room, q="owner") == {mine.pk}
    assert listed(admin_client, Room, q="nobody-by-that-name") == set()


def test_spectator_present_filter_and_join_request_status_filter(admin_client, make_room, make_user):
    room, approval_room = make_room(), make_room(require_approval=True)
    stay = join(room, make_user("stayer")).spectator
    gone = services.room_leave(spectator=join(room, make_user("leaver")).spectator)
    pending = join(approval_room, make_user("waiter")).join_request

    assert listed(admin_client, Spectator, present="yes") == {stay.pk}
    assert listed(admin_client, Spectator, present="no") == {gone.pk}
    assert listed(admin_client, JoinRequest, status__exact="pending") == {pending.pk}
    assert listed(admin_client, JoinRequest, status__exact="approved") == set()


# --- Room actions -------------------------------------------------------------------------------


def test_close_rooms_action_closes_and_empties_rooms(staff_client, make_room, make_user):
    first, second, untouched = make_room(), make_room(require_approval=True), make_room()
    seated = join(first, make_user("viewer")).spectator
    waiting = join(second, make_user("waiter")).join_request

    response = run_action(staff_client, Room, "close_rooms", [first, second])

    assert response.status_code == 200
    assert "Closed 2 item(s)." in [str(m) for m in response.context["messages"]]
    for room in (first, second):
        room.refresh_from_db()
        assert room.status == Room.Status.CLOSED
        assert room.closed_at is not None
    untouched.refresh_from_db()
    assert untouched.status == Room.Status.ACTIVE
    seated.refresh_from_db()
    assert seated.left_at is not None
    assert seated.left_reason == Spectator.LeftReason.CLOSED
    waiting.refresh_from_db()
    assert waiting.status == JoinRequest.Status.EXPIRED


def test_close_rooms_action_is_idempotent(admin_client, make_room, owner):
    room = make_room()
    services.room_close(room=room, actor=owner)
    closed_at = Room.objects.get(pk=room.pk).closed_at
    run_action(admin_client, Room, "close_rooms", [room])
    room.refresh_from_db()
    assert room.status == Room.Status.CLOSED
    assert room.closed_at == closed_at


def test_expire_rooms_now_action_runs_the_sweep(admin_client, make_room, make_user):
    stale, fresh = make_room(), make_room()
    seated = join(stale, make_user("viewer")).spectator
    Room.objects.filter(pk=stale.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    response = run_action(admin_client, Room, "expire_rooms_now", [fresh])

    assert "1 room(s) expired." in [str(m) for m in response.context["messages"]]
    assert Room.objects.get(pk=stale.pk).status == Room.Status.EXPIRED
    assert Room.objects.get(pk=fresh.pk).status == Room.Status.ACTIVE
    seated.refresh_from_db()
    assert seated.left_reason == Spectator.LeftReason.EXPIRED


# --- The room change form -----------------------------------------------------------------------


def test_change_page_lists_requests_and_present_spectators(admin_client, make_room, make_user):
    room = make_room(require_approval=True)
    waiter = make_user("waiter")
    join(room, waiter, message="let me in please")
    response = admin_client.get(change_url(room))
    assert response.status_code == 200
    assert inline_formset(response, JoinRequest).prefix == "join_requests"
    assert inline_formset(response, Spectator).prefix == "spectators"
    assert b"let me in please" in response.content


def test_unchanged_change_form_saves_without_side_effects(admin_client, make_room, make_user):
    room = make_room(require_approval=True, max_spectators=7)
    pending = join(room, make_user("waiter")).join_request
    page = admin_client.get(change_url(room))

    response = admin_client.post(change_url(room), change_form_data(page))

    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    room.refresh_from_db()
    assert (room.require_approval, room.max_spectators, room.status) == (True, 7, Room.Status.ACTIVE)
    pending.refresh_from_db()
    assert pending.status == JoinRequest.Status.PENDING


@pytest.mark.parametrize(("decision", "expected"), [("approve", "approved"), ("deny", "denied")])
def test_inline_decision_decides_a_pending_request(staff_client, make_room, make_user, decision, expected):
    room = make_room(require_approval=True)
    first = join(room, make_user("first")).join_request
    second = join(room, make_user("second")).join_request
    page = staff_client.get(change_url(room))
    data = change_form_data(page)
    formset = inline_formset(page, JoinRequest)
    (target_form,) = [f for f in formset.forms if f.instance.pk == first.pk]
    data[target_form.add_prefix("decision")] = decision

    response = staff_client.post(change_url(room), data)

    assert response.status_code == 302
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == expected
    assert first.decided_by == staff_client.staff_user
    assert first.decided_at is not None
    assert second.status == JoinRequest.Status.PENDING
    assert LogEntry.objects.filter(object_id=str(room.pk), action_flag=CHANGE).exists()


def test_inline_approval_admits_the_requester(admin_client, make_room, make_user):
    room = make_room(require_approval=True)
    waiter = make_user("waiter")
    pending = join(room, waiter).join_request
    page = admin_client.get(change_url(room))
    data = change_form_data(page)
    (target_form,) = inline_formset(page, JoinRequest).forms
    assert target_form.instance.pk == pending.pk
    data[target_form.add_prefix("decision")] = "approve"
    admin_client.post(change_url(room), data)

    assert join(room, waiter).status == "approved"


def test_inline_decision_on_an_already_decided_request_warns(admin_client, make_room, make_user, owner):
    room = make_room(require_approval=True)
    pending = join(room, make_user("waiter")).join_request
    page = admin_client.get(change_url(room))
    data = change_form_data(page)
    (target_form,) = inline_formset(page, JoinRequest).forms
    data[target_form.add_prefix("decision")] = "approve"
    # The owner denies it while the moderator's page is open.
    services.join_request_decide(join_request=pending, approver=owner, approved=False)

    response = admin_client.post(change_url(room), data, follow=True)

    pending.refresh_from_db()
    assert pending.status == JoinRequest.Status.DENIED
    assert pending.decided_by == owner
    assert any("already denied" in str(m) for m in response.context["messages"])


def test_turning_approval_off_in_the_change_form_admits_everyone_waiting(staff_client, make_room, make_user):
    room = make_room(require_approval=True)
    waiting = [join(room, make_user(f"waiter{i}")).join_request for i in range(3)]
    page = staff_client.get(change_url(room))
    data = change_form_data(page)
    del data["require_approval"]  # an unticked checkbox is absent from the POST

    response = staff_client.post(change_url(room), data)

    assert response.status_code == 302
    room.refresh_from_db()
    assert room.require_approval is False
    for join_request in waiting:
        join_request.refresh_from_db()
        assert join_request.status == JoinRequest.Status.APPROVED
        assert join_request.decided_by == staff_client.staff_user


def test_access_fields_in_the_change_form_go_through_the_service(admin_client, make_room):
    room = make_room(max_spectators=5)
    page = admin_client.get(change_url(room))
    data = change_form_data(page)
    data.update(max_spectators="12", auto_approve_timeout="90", name="renamed")

    response = admin_client.post(change_url(room), data)

    assert response.status_code == 302
    room.refresh_from_db()
    assert (room.max_spectators, room.auto_approve_timeout, room.name) == (12, 90, "renamed")


def test_access_change_on_an_ended_room_is_refused_by_the_service(admin_client, make_room, owner):
    room = make_room(max_spectators=5)
    page = admin_client.get(change_url(room))
    services.room_close(room=room, actor=owner)
    data = change_form_data(page)
    data["max_spectators"] = "50"

    response = admin_client.post(change_url(room), data, follow=True)

    assert response.status_code == 200
    room.refresh_from_db()
    assert room.max_spectators == 5
    assert any("no longer live" in str(m) for m in response.context["messages"])


# --- Join requests, spectators, bans, invitations -----------------------------------------------


@pytest.mark.parametrize(
    ("action", "expected", "message"), [("approve", "approved", "Approved"), ("deny", "denied", "Denied")]
)
def test_join_request_actions(staff_client, make_room, make_user, action, expected, message):
    room = make_room(require_approval=True)
    chosen = [join(room, make_user(f"chosen{i}")).join_request for i in range(2)]
    other = join(room, make_user("other")).join_request

    response = run_action(staff_client, JoinRequest, action, chosen)

    assert f"{message} 2 item(s)." in [str(m) for m in response.context["messages"]]
    for join_request in chosen:
        join_request.refresh_from_db()
        assert join_request.status == expected
        assert join_request.decided_by == staff_client.staff_user
    other.refresh_from_db()
    assert other.status == JoinRequest.Status.PENDING


def test_join_request_action_on_a_decided_request_warns_and_changes_nothing(admin_client, make_room, make_user, owner):
    room = make_room(require_approval=True)
    decided = join(room, make_user("decided")).join_request
    services.join_request_decide(join_request=decided, approver=owner, approved=False)

    response = run_action(admin_client, JoinRequest, "approve", [decided])

    decided.refresh_from_db()
    assert decided.status == JoinRequest.Status.DENIED
    assert any("already denied" in str(m) for m in response.context["messages"])


def test_spectator_kick_action(staff_client, make_room, make_user):
    room = make_room()
    kicked_user, staying_user = make_user("kicked"), make_user("staying")
    kicked, staying = join(room, kicked_user).spectator, join(room, staying_user).spectator

    run_action(staff_client, Spectator, "kick", [kicked])

    kicked.refresh_from_db()
    staying.refresh_from_db()
    assert kicked.left_reason == Spectator.LeftReason.KICKED
    assert kicked.left_at is not None
    assert staying.left_at is None
    assert not Ban.objects.exists()
    # A kick is not a ban: they may come back.
    assert join(room, kicked_user).status == "approved"


def test_spectator_kick_action_refuses_room_managers(admin_client, make_room, owner):
    room = make_room()
    seat = join(room, owner).spectator

    response = run_action(admin_client, Spectator, "kick", [seat])

    seat.refresh_from_db()
    assert seat.left_at is None
    assert any("cannot be kicked" in str(m) for m in response.context["messages"])


def test_spectator_ban_action_bans_and_removes(staff_client, make_room, make_user):
    room = make_room()
    troll = make_user("troll")
    seat = join(room, troll).spectator
    anon_seat = services.room_join(
        room=room, visitor=Visitor(anon_key=services.anon_key_for("browser-secret")), display_name="Anon"
    ).spectator

    run_action(staff_client, Spectator, "ban", [seat, anon_seat])

    for spectator in (seat, anon_seat):
        spectator.refresh_from_db()
        assert spectator.left_reason == Spectator.LeftReason.BANNED
        assert spectator.left_at is not None
    user_ban = Ban.objects.get(room=room, user=troll)
    assert user_ban.banned_by == staff_client.staff_user
    assert user_ban.lifted_at is None
    assert Ban.objects.filter(room=room, user__isnull=True, anon_key=services.anon_key_for("browser-secret")).exists()
    with pytest.raises(AccessRefused) as refused:
        join(room, troll)
    assert refused.value.refusal == "banned"


def test_ban_lift_action(staff_client, make_room, make_user, owner):
    room = make_room()
    troll = make_user("troll")
    ban = services.ban_create(room=room, actor=owner, user=troll)

    response = run_action(staff_client, Ban, "lift", [ban])

    assert "Lifted 1 item(s)." in [str(m) for m in response.context["messages"]]
    ban.refresh_from_db()
    assert ban.lifted_at is not None
    assert ban.lifted_by == staff_client.staff_user
    assert join(room, troll).status == "approved"


def test_invitation_revoke_action(staff_client, make_room, make_user, owner):
    room = make_room(access_level=AccessLevel.INVITE_ONLY)
    guest = make_user("guest")
    invitation, _new = services.invitation_create(room=room, username=guest.username, actor=owner)
    kept, _new = services.invitation_create(room=room, username=make_user("kept").username, actor=owner)

    run_action(staff_client, Invitation, "revoke", [invitation])

    invitation.refresh_from_db()
    kept.refresh_from_db()
    assert invitation.revoked_at is not None
    assert kept.revoked_at is None
    with pytest.raises(AccessRefused) as refused:
        join(room, guest)
    assert refused.value.refusal == "not_invited"


# --- Training sessions and tokens --------------------------------------------------------------


def test_training_session_page_shows_its_rooms_inline(staff_client, make_room, training_session, make_user):
    from metrics.services import training_session_create

    rooms = [make_room(), make_room(access_level=AccessLevel.PRIVATE)]
    other_session, _ = training_session_create(owner=make_user("someone"), id="other-run", name="Other")
    elsewhere = services.room_create(creator=other_session.owner, training_session=other_session)[0]

    response = staff_client.get(change_url(training_session))

    assert response.status_code == 200
    (formset,) = [inline.formset for inline in response.context["inline_admin_formsets"]]
    assert {form.instance.pk for form in formset.forms} == {room.pk for room in rooms}
    content = response.content.decode()
    for room in rooms:
        assert room.code in content
    assert elsewhere.code not in content


def test_api_token_revoke_action_stops_authentication(staff_client, owner, make_token, api_client):
    raw = make_token(owner)
    other_raw = make_token(owner)
    assert api_client(token=raw).get("/api/v1/rooms/").status_code == 200
    token = ApiToken.objects.get(hint=raw[:12])

    run_action(staff_client, ApiToken, "revoke", [token])

    token.refresh_from_db()
    assert token.revoked_at is not None
    response = api_client(token=raw).get("/api/v1/rooms/")
    assert response.status_code == 401
    assert api_client(token=other_raw).get("/api/v1/rooms/").status_code == 200
