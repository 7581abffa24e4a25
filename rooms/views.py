"""Pages: the lobby, a room (its join flow, then the live room) and the owner's pages.

Views parse, ask ``rooms.access``, call services and selectors, and render. The live parts
(joining, the room stream, moderation) run in the page's ES modules against the REST API
and the room WebSocket, which ask ``rooms.access`` again themselves.
"""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_http_methods

from metrics.models import TrainingSession
from metrics.selectors import training_session_list_for_user
from rooms import access, selectors, services
from rooms.access import Refusal, RoomNotFound, Verdict, Visitor
from rooms.api.views import session_visitor
from rooms.codes import room_code_is_valid, room_code_normalize
from rooms.forms import RoomCreateForm
from rooms.invite_links import invite_link_grant

LOBBY_ROOM_LIMIT = 60
MY_ROOM_LIMIT = 100
# A room's password is shown once, on the page right after it was created.
NEW_PASSWORD_SESSION_KEY = "spectator_new_room_password"

# The join screen a room page opens on, by what joining would decide now.
INITIAL_SCREENS = {
    Verdict.ADMIT: "joining",
    Verdict.REQUEST_APPROVAL: "request",
    Verdict.PENDING: "waiting",
}


def page_visitor(request) -> Visitor:
    """The signed-in user, or the anonymous browser the join API already knows (never creates one)."""
    return session_visitor(request.user, request.session)


def room_missing(request, code: str):
    return render(request, "rooms/room_missing.html", {"code": code}, status=404)


@require_GET
@ensure_csrf_cookie
def lobby(request):
    rooms = list(selectors.room_list_public()[:LOBBY_ROOM_LIMIT])
    for room in rooms:
        room.progress = selectors.room_progress(room)
    return render(request, "rooms/lobby.html", {"rooms": rooms, "join_code": ""})


@require_GET
def room_go(request):
    """The lobby's join-by-code box: a well-formed code goes to its room page."""
    code = room_code_normalize(request.GET.get("code", ""))
    if room_code_is_valid(code):
        return redirect("room", code=code)
    rooms = list(selectors.room_list_public()[:LOBBY_ROOM_LIMIT])
    for room in rooms:
        room.progress = selectors.room_progress(room)
    context = {
        "rooms": rooms,
        "join_code": request.GET.get("code", "")[:32],
        "join_error": "A room code is 6 characters from A–Z and 2–9 (no O, I, 0 or 1).",
    }
    return render(request, "rooms/lobby.html", context, status=400)


@require_GET
@ensure_csrf_cookie
def room_page(request, code: str):
    """A room: the join flow first when needed (password, approval, refusal), then the live room."""
    try:
        room = access.room_get_visible(code, request.user)
    except RoomNotFound:
        return room_missing(request, code)
    # An invite link (``?invite=``) joins in one click: the page hands its token to the join API.
    invite_token = request.GET.get("invite", "")[:512]
    visitor = page_visitor(request)
    link, _invite_link = invite_link_grant(room, visitor, invite_token)
    decision = access.join_preview(room, visitor, link=link)
    if decision.refusal in (Refusal.CLOSED, Refusal.EXPIRED):
        return render(request, "rooms/room_ended.html", {"room": room, "refusal": decision.refusal.value}, status=410)
    if decision.verdict == Verdict.REFUSE:
        screen = "password" if decision.refusal == Refusal.PASSWORD_REQUIRED else "refused"
    else:
        screen = INITIAL_SCREENS[decision.verdict]
    room = selectors.room_get_with_counts(room)
    session = room.training_session
    is_manager = access.can_manage_room(request.user, room)
    room_data = {
        "code": room.code,
        "room_id": str(room.pk),
        "name": room.name,
        "access_level": room.access_level,
        "require_approval": room.require_approval,
        "locked": room.locked,
        "max_spectators": room.max_spectators,
        "screen": screen,
        "refusal": decision.refusal.value if decision.refusal else None,
        "invite_token": invite_token if link != access.LinkGrant.NONE else "",
        "waiting_message": room.waiting_message,
        "signed_in": request.user.is_authenticated,
        "username": request.user.get_username() if request.user.is_authenticated else "",
        "is_manager": is_manager,
        "login_url": f"{reverse('login')}?next={reverse('room', kwargs={'code': room.code})}",
        "manage_url": reverse("my-room", kwargs={"code": room.code}) if is_manager else "",
        "training_session": {
            "id": session.pk,
            "name": session.name,
            "algorithm": session.algorithm,
            "total_episodes": session.total_episodes,
            "status": session.status,
            "history_url": reverse("metric-series", kwargs={"training_session_id": session.pk}),
        },
        "flags": {
            "overlay": room.enable_metrics_overlay,
            "graphs": room.enable_performance_graphs,
            "decisions": room.enable_decision_visualization,
        },
    }
    context = {
        "room": room,
        "session": session,
        "screen": screen,
        "refusal": decision.refusal.value if decision.refusal else "",
        "refusal_message": access.REFUSAL_MESSAGES.get(decision.refusal, "") if decision.refusal else "",
        "is_manager": is_manager,
        "room_data": room_data,
    }
    return render(request, "rooms/room.html", context)


# --- The owner's pages ------------------------------------------------------------------------


@login_required
@require_GET
def my_home(request):
    """The signed-in user's training sessions and the rooms they manage."""
    sessions = list(training_session_list_for_user(request.user)[:MY_ROOM_LIMIT])
    rooms = list(selectors.room_list_for_user(request.user, include_ended=True)[:MY_ROOM_LIMIT])
    for room in rooms:
        room.progress = selectors.room_progress(room)
        room.is_live_now = room.is_live()
    return render(request, "rooms/my_home.html", {"sessions": sessions, "rooms": rooms})


@login_required
@require_http_methods(["GET", "POST"])
def my_room_create(request):
    """Create a room for one of the user's open training sessions; its password is shown once after."""
    sessions = [s for s in training_session_list_for_user(request.user) if s.is_open]
    form = RoomCreateForm(
        request.POST or None,
        training_sessions=sessions,
        initial={"training_session": request.GET.get("training_session", "")},
    )
    if request.method == "POST" and form.is_valid():
        v = form.cleaned_data
        try:
            training_session = access.training_session_get_managed(v["training_session"], request.user)
            room, password = services.room_create(
                creator=request.user,
                training_session=training_session,
                name=v["name"],
                access_level=v["access_level"],
                password=v["password"] or None,
                max_spectators=v["max_spectators"],
                allowed_users=v["allowed_users"],
                require_approval=v["require_approval"],
                auto_approve_timeout=v["auto_approve_timeout"],
                duration_hours=v["duration_hours"],
                enable_metrics_overlay=v["enable_metrics_overlay"],
                enable_performance_graphs=v["enable_performance_graphs"],
                enable_decision_visualization=v["enable_decision_visualization"],
            )
        except ValidationError as exc:
            _form_errors_from(form, exc)
        except TrainingSession.DoesNotExist:
            form.add_error("training_session", "No such training session of yours.")
        except PermissionDenied as exc:
            form.add_error(None, str(exc))
        else:
            if password:
                request.session[NEW_PASSWORD_SESSION_KEY] = {"room_id": str(room.pk), "password": password}
            return redirect("my-room", code=room.code)
    return render(request, "rooms/my_room_create.html", {"form": form, "has_sessions": bool(sessions)})


def _form_errors_from(form, exc: ValidationError) -> None:
    names = {"room_duration_hours": "duration_hours", "training_session_id": "training_session"}
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc)
        return
    for field, messages in exc.message_dict.items():
        field = names.get(field, field)
        form.add_error(field if field in form.fields else None, messages)


@login_required
@require_GET
@ensure_csrf_cookie
def my_room(request, code: str):
    """Manage a room: share it, its password, invitations, waiting requests, spectators, bans, close."""
    try:
        room = access.room_get_managed(code, request.user)
    except RoomNotFound:
        return room_missing(request, code)
    room = selectors.room_get_with_counts(room)
    new_password = None
    shown_once = request.session.get(NEW_PASSWORD_SESSION_KEY)
    if shown_once and shown_once.get("room_id") == str(room.pk):
        new_password = shown_once["password"]
        del request.session[NEW_PASSWORD_SESSION_KEY]
    context = {
        "room": room,
        "session": room.training_session,
        "progress": selectors.room_progress(room),
        "is_live": room.is_live(),
        "new_password": new_password,
        "manage_data": {
            "code": room.code,
            "room_url": reverse("room", kwargs={"code": room.code}),
            "is_live": room.is_live(),
            "access_level": room.access_level,
        },
    }
    return render(request, "rooms/my_room.html", context)
