"""Room API: one view per operation. Views parse, ask ``rooms.access``, call a service, serialize."""

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, status
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from metrics.models import TrainingSession
from rooms import access, moderation, selectors, services
from rooms.access import Visitor
from rooms.api import serializers as s
from rooms.models import Ban, Invitation, JoinRequest, Spectator
from rooms.tickets import ticket_issue
from spectator_site.throttles import AnonRateThrottle, ScopedRateThrottle, UserRateThrottle

ERRORS = {400: s.ErrorSerializer, 401: s.ErrorSerializer, 403: s.ErrorSerializer, 404: s.ErrorSerializer}
ANON_SESSION_KEY = "spectator_visitor_token"


class Pagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 200


def client_ident(request) -> str:
    """Who to count password failures against: the user, else the client address."""
    if request.user.is_authenticated:
        return f"user:{request.user.pk}"
    return f"ip:{BaseThrottle().get_ident(request)}"


def moderation_target(room, validated: dict):
    """``(user, spectator)`` named by a ban or timeout request: a user by ``username``, or a
    spectator of ``room`` by ``spectator_id``; a 400 naming the field when there is none."""
    if validated.get("username"):
        user = get_user_model().objects.filter(username=validated["username"]).first()
        if user is None:
            raise ValidationError({"username": ["Unknown user."]})
        return user, None
    spectator = Spectator.objects.filter(pk=validated["spectator_id"], room=room).select_related("user").first()
    if spectator is None:
        raise ValidationError({"spectator_id": ["No such spectator in this room."]})
    return None, spectator


def client_ip(request) -> str:
    """The address the request came from, as the throttles see it (proxies included); audited."""
    return BaseThrottle().get_ident(request)


def visitor_from_request(request, visitor_token: str = "") -> tuple[Visitor, str]:
    """The signed-in user, or an anonymous visitor keyed by a token kept in the session.

    Returns the visitor and, for anonymous visitors, the raw token to hand back.
    """
    if request.user.is_authenticated:
        return Visitor(user=request.user), ""
    token = visitor_token or request.session.get(ANON_SESSION_KEY) or secrets.token_urlsafe(24)
    request.session[ANON_SESSION_KEY] = token
    return Visitor(anon_key=services.anon_key_for(token)), token


def session_visitor(user, session) -> Visitor:
    """The signed-in user, or the anonymous browser its session already knows (never creates one)."""
    if user is not None and user.is_authenticated:
        return Visitor(user=user)
    token = session.get(ANON_SESSION_KEY) if session is not None else None
    return Visitor(anon_key=services.anon_key_for(token)) if token else Visitor()


def websocket_url(request, room_code: str, ticket: str) -> str:
    scheme = "wss" if request.is_secure() else "ws"
    return f"{scheme}://{request.get_host()}/ws/rooms/{room_code}/?ticket={ticket}"


def require_self_or_staff(user, named: str | None, field: str) -> None:
    if not access.can_act_as(user, named):
        raise PermissionDenied(f"{field} names another user; only staff may act for others.")


ACCESS_CONTROL_FIELDS = frozenset(s.AccessControlInputSerializer().fields)


def room_create_naming_input_fields(**kwargs):
    """``services.room_create``, its field errors named as the request nests them (``access_control.<field>``)."""
    try:
        return services.room_create(**kwargs)
    except DjangoValidationError as exc:
        if not hasattr(exc, "error_dict"):
            raise
        errors = exc.message_dict
        control = {field: errors.pop(field) for field in list(errors) if field in ACCESS_CONTROL_FIELDS}
        raise ValidationError({**errors, **({"access_control": control} if control else {})}) from None


def room_response(room, request, *, http_status=status.HTTP_200_OK, extra=None) -> Response:
    data = s.RoomSerializer(selectors.room_get_with_counts(room), context={"request": request}).data
    if extra:
        data = {**data, **extra}
    return Response(data, status=http_status)


# --- Rooms -------------------------------------------------------------------------------------


class RoomListCreateApi(APIView):
    pagination_class = Pagination  # for the schema: the list is paginated

    @extend_schema(
        operation_id="rooms_mine",
        parameters=[OpenApiParameter("include_ended", bool, description="Also list closed and expired rooms.")],
        responses={200: s.RoomSerializer(many=True), **ERRORS},
    )
    def get(self, request):
        """List the rooms the caller manages."""
        include_ended = request.query_params.get("include_ended", "").lower() in {"1", "true", "yes"}
        rooms = selectors.room_list_for_user(request.user, include_ended=include_ended)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(rooms, request, view=self)
        return paginator.get_paginated_response(s.RoomSerializer(page, many=True, context={"request": request}).data)

    @extend_schema(request=s.RoomCreateInputSerializer, responses={201: s.RoomCreatedSerializer, **ERRORS})
    def post(self, request):
        """Create a room for one of the caller's training sessions."""
        data = s.RoomCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        creator = request.user
        if v.get("creator_id"):
            require_self_or_staff(request.user, v["creator_id"], "creator_id")
            creator = get_user_model().objects.filter(username=v["creator_id"]).first()
            if creator is None:
                raise ValidationError({"creator_id": ["Unknown user."]})
        try:
            training_session = access.training_session_get_managed(v["training_session_id"], creator)
        except TrainingSession.DoesNotExist:
            raise ValidationError({"training_session_id": ["No such training session of yours."]}) from None
        control = v.get("access_control") or s.AccessControlInputSerializer().run_validation({})
        room, password = room_create_naming_input_fields(
            creator=creator,
            training_session=training_session,
            access_level=control["access_level"],
            password=control.get("password"),
            max_spectators=control["max_spectators"],
            allowed_users=control.get("allowed_users", []),
            blocked_users=control.get("blocked_users", []),
            require_approval=control["require_approval"],
            auto_approve_timeout=control["auto_approve_timeout"],
            duration_hours=v["room_duration_hours"],
            custom_code=v.get("custom_room_code") or None,
            spectator_mode=v["spectator_mode"],
            name=v["name"],
            enable_metrics_overlay=v["enable_metrics_overlay"],
            enable_performance_graphs=v["enable_performance_graphs"],
            enable_decision_visualization=v["enable_decision_visualization"],
        )
        return room_response(room, request, http_status=status.HTTP_201_CREATED, extra={"room_password": password})


class RoomPublicListApi(APIView):
    permission_classes = [permissions.AllowAny]
    pagination_class = Pagination  # for the schema: the list is paginated

    @extend_schema(operation_id="rooms_public", responses={200: s.RoomSerializer(many=True)})
    def get(self, request):
        """List live public and password rooms; private and invite-only rooms are never listed."""
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(selectors.room_list_public(), request, view=self)
        return paginator.get_paginated_response(s.RoomSerializer(page, many=True, context={"request": request}).data)


class RoomDetailApi(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(responses={200: s.RoomSerializer, **ERRORS})
    def get(self, request, ref):
        """Show a room by code or id; private rooms look missing to strangers."""
        return room_response(access.room_get_visible(ref, request.user), request)


class RoomCloseApi(APIView):
    @extend_schema(request=s.ActorInputSerializer, responses={200: s.RoomSerializer, **ERRORS})
    def post(self, request, ref):
        """Close a room: everyone present leaves and pending requests expire."""
        data = s.ActorInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        require_self_or_staff(request.user, data.validated_data.get("actor_id"), "actor_id")
        room = services.room_close(
            room=access.room_get_managed(ref, request.user), actor=request.user, ip=client_ip(request)
        )
        return room_response(room, request)


class RoomPasswordRegenerateApi(APIView):
    @extend_schema(request=None, responses={200: s.RoomPasswordSerializer, **ERRORS})
    def post(self, request, ref):
        """Give a password room a new generated password, shown once."""
        room = access.room_get_managed(ref, request.user)
        password = services.room_password_regenerate(room=room, actor=request.user, ip=client_ip(request))
        return Response({"room_code": room.code, "room_password": password})


class RoomAccessUpdateApi(APIView):
    @extend_schema(request=s.AccessUpdateInputSerializer, responses={200: s.RoomCreatedSerializer, **ERRORS})
    def patch(self, request, ref):
        """Change a room's access level, password, seat limit, approval or expiry."""
        data = s.AccessUpdateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        room, password = services.room_access_update(
            room=access.room_get_managed(ref, request.user),
            actor=request.user,
            ip=client_ip(request),
            **data.validated_data,
        )
        return room_response(room, request, extra={"room_password": password})


# --- Joining -----------------------------------------------------------------------------------


class RoomJoinApi(APIView):
    permission_classes = [permissions.AllowAny]
    throttle_classes = [AnonRateThrottle, UserRateThrottle, ScopedRateThrottle]
    throttle_scope = "join"

    @extend_schema(
        request=s.JoinInputSerializer,
        responses={
            200: s.JoinResponseSerializer,
            202: s.JoinResponseSerializer,
            409: s.ErrorSerializer,
            410: s.ErrorSerializer,
            429: s.ErrorSerializer,
            **ERRORS,
        },
    )
    def post(self, request, ref):
        """Join a room: 200 with a WebSocket ticket when admitted, 202 while approval is pending.

        Send the same request again (with ``visitor_token`` when anonymous) to learn the outcome.
        """
        data = s.JoinInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        require_self_or_staff(request.user, v.get("user_id"), "user_id")
        room = access.room_get_visible(ref, request.user)
        visitor, token = visitor_from_request(request, v.get("visitor_token", ""))
        result = services.room_join(
            room=room,
            visitor=visitor,
            display_name=v.get("display_name"),
            password=v.get("password") or None,
            message=v.get("message", ""),
            client=client_ident(request),
            invite_token=v.get("invite_token", ""),
            ip=client_ip(request),
        )
        body = {
            "status": result.status,
            "session_id": room.pk,
            "room_id": room.pk,
            "room_code": room.code,
        }
        if token:
            body["visitor_token"] = token
        if result.status == "approved":
            ticket = ticket_issue(room_id=room.pk, spectator_id=result.spectator.pk)
            body.update(
                display_name=result.spectator.display_name,
                spectator_id=result.spectator.pk,
                ticket=ticket,
                ticket_expires_in=settings.SPECTATOR_TICKET_MAX_AGE,
                websocket_url=websocket_url(request, room.code, ticket),
            )
            return Response(body, status=status.HTTP_200_OK)
        body.update(
            display_name=result.join_request.display_name,
            request_id=result.join_request.pk,
            place=moderation.join_request_place(result.join_request),
            waiting_message=room.waiting_message,
        )
        return Response(body, status=status.HTTP_202_ACCEPTED)


class RoomLeaveApi(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(request=s.LeaveInputSerializer, responses={204: None, **ERRORS})
    def post(self, request, ref):
        """Leave a room, freeing the seat. Leaving a room you are not in is not an error."""
        data = s.LeaveInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        room = access.room_get_visible(ref, request.user)
        visitor, _token = visitor_from_request(request, data.validated_data.get("visitor_token", ""))
        spectator = access.current_spectator(room, visitor)
        if spectator is not None:
            services.room_leave(spectator=spectator)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Join requests -------------------------------------------------------------------------------


class JoinRequestListApi(APIView):
    @extend_schema(
        parameters=[s.JoinRequestListQuerySerializer], responses={200: s.JoinRequestSerializer(many=True), **ERRORS}
    )
    def get(self, request, ref):
        """List a room's join requests (pending by default)."""
        query = s.JoinRequestListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        room = access.room_get_managed(ref, request.user)
        wanted = query.validated_data["status"]
        requests = selectors.join_request_list(room, status=None if wanted == "all" else wanted)
        return Response(s.JoinRequestSerializer(requests, many=True).data)


class _JoinRequestDecideApi(APIView):
    approved: bool

    @extend_schema(request=s.ActorInputSerializer, responses={200: s.JoinRequestSerializer, **ERRORS})
    def post(self, request, ref, request_id):
        data = s.ActorInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        require_self_or_staff(request.user, data.validated_data.get("actor_id"), "actor_id")
        room = access.room_get_managed(ref, request.user)
        join_request = get_object_or_404(JoinRequest.objects.select_related("room", "user"), pk=request_id, room=room)
        join_request = services.join_request_decide(
            join_request=join_request, approver=request.user, approved=self.approved, ip=client_ip(request)
        )
        return Response(s.JoinRequestSerializer(join_request).data)


class JoinRequestApproveApi(_JoinRequestDecideApi):
    """Approve a pending join request; the requester's next join is admitted."""

    approved = True


class JoinRequestDenyApi(_JoinRequestDecideApi):
    """Deny a pending join request."""

    approved = False


# --- Invitations -------------------------------------------------------------------------------


class InvitationListCreateApi(APIView):
    @extend_schema(responses={200: s.InvitationSerializer(many=True), **ERRORS})
    def get(self, request, ref):
        """List a room's active invitations."""
        room = access.room_get_managed(ref, request.user)
        return Response(s.InvitationSerializer(selectors.invitation_list(room), many=True).data)

    @extend_schema(request=s.InvitationCreateInputSerializer, responses={201: s.InvitationSerializer, **ERRORS})
    def post(self, request, ref):
        """Invite a user by username (idempotent: 200 with the existing invitation)."""
        data = s.InvitationCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        room = access.room_get_managed(ref, request.user)
        invitation, created = services.invitation_create(
            room=room, username=data.validated_data["username"], actor=request.user, ip=client_ip(request)
        )
        return Response(
            s.InvitationSerializer(invitation).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class InvitationRevokeApi(APIView):
    @extend_schema(responses={204: None, **ERRORS})
    def delete(self, request, ref, invitation_id):
        """Revoke an invitation."""
        room = access.room_get_managed(ref, request.user)
        invitation = get_object_or_404(Invitation, pk=invitation_id, room=room)
        services.invitation_revoke(invitation=invitation, actor=request.user, ip=client_ip(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Spectators and bans -------------------------------------------------------------------------


class SpectatorListApi(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(responses={200: s.SpectatorSerializer(many=True), **ERRORS})
    def get(self, request, ref):
        """List who is watching; for the room's managers and its present spectators."""
        room = access.room_get_visible(ref, request.user)
        visitor, _token = visitor_from_request(request, request.query_params.get("visitor_token", ""))
        if not access.can_manage_room(request.user, room) and access.current_spectator(room, visitor) is None:
            raise PermissionDenied("Join the room to see who is watching.")
        return Response(s.SpectatorSerializer(selectors.spectator_list(room), many=True).data)


class SpectatorKickApi(APIView):
    @extend_schema(request=None, responses={200: s.SpectatorSerializer, **ERRORS})
    def post(self, request, ref, spectator_id):
        """Remove a spectator from the room now; they may join again."""
        room = access.room_get_managed(ref, request.user)
        spectator = get_object_or_404(Spectator.objects.select_related("room", "user"), pk=spectator_id, room=room)
        if not spectator.is_present:
            raise ValidationError({"spectator_id": ["This spectator has already left."]})
        spectator = services.spectator_kick(spectator=spectator, actor=request.user, ip=client_ip(request))
        return Response(s.SpectatorSerializer(spectator).data)


class BanListCreateApi(APIView):
    @extend_schema(responses={200: s.BanSerializer(many=True), **ERRORS})
    def get(self, request, ref):
        """List a room's active bans."""
        room = access.room_get_managed(ref, request.user)
        return Response(s.BanSerializer(selectors.ban_list(room), many=True).data)

    @extend_schema(request=s.BanCreateInputSerializer, responses={201: s.BanSerializer, **ERRORS})
    def post(self, request, ref):
        """Ban a user (by username) or a present spectator (by id); they leave now."""
        data = s.BanCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        room = access.room_get_managed(ref, request.user)
        user, spectator = moderation_target(room, v)
        ban = services.ban_create(
            room=room,
            actor=request.user,
            user=user,
            spectator=spectator,
            reason=v["reason"],
            scope=v["scope"],
            ip=client_ip(request),
        )
        return Response(s.BanSerializer(ban).data, status=status.HTTP_201_CREATED)


class BanLiftApi(APIView):
    @extend_schema(responses={204: None, **ERRORS})
    def delete(self, request, ref, ban_id):
        """Lift a ban."""
        room = access.room_get_managed(ref, request.user)
        # This room's bans and timeouts, and its owner's bans across rooms (``selectors.ban_list``).
        reach = Q(room=room) | Q(scope=Ban.Scope.OWNER, room__creator_id=room.creator_id)
        ban = get_object_or_404(Ban.objects.select_related("room").filter(reach), pk=ban_id)
        services.ban_lift(ban=ban, actor=request.user, ip=client_ip(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
