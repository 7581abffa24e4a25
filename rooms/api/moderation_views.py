"""Room API for moderation: locks, admit all, the waiting room, moderators, timeouts, invite links
and the audit trail. One view per operation, as in ``rooms.api.views``."""

from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from rooms import access, exports, invite_links, moderation, selectors, services
from rooms.api import serializers as s
from rooms.api.views import ERRORS, Pagination, client_ip, moderation_target, room_response
from rooms.models import Ban, InviteLink, RoomModerator, Spectator

# --- Lock --------------------------------------------------------------------------------------


class _RoomLockApi(APIView):
    locked: bool

    @extend_schema(request=None, responses={200: s.RoomSerializer, **ERRORS})
    def post(self, request, ref):
        room = access.room_get_managed(ref, request.user)
        room = moderation.room_lock(room=room, actor=request.user, locked=self.locked, ip=client_ip(request))
        return room_response(room, request)


class RoomLockApi(_RoomLockApi):
    """Lock a room: nobody new gets in; spectators present stay."""

    locked = True


class RoomUnlockApi(_RoomLockApi):
    """Unlock a room."""

    locked = False


# --- Waiting room ------------------------------------------------------------------------------


class JoinRequestAdmitAllApi(APIView):
    @extend_schema(request=None, responses={200: s.AdmitAllSerializer, **ERRORS})
    def post(self, request, ref):
        """Approve every pending join request of the room."""
        room = access.room_get_managed(ref, request.user)
        admitted = moderation.join_requests_admit_all(room=room, actor=request.user, ip=client_ip(request))
        return Response({"admitted": admitted})


class SpectatorSendToWaitingApi(APIView):
    @extend_schema(request=None, responses={200: s.JoinRequestSerializer, **ERRORS})
    def post(self, request, ref, spectator_id):
        """Send a spectator back to the waiting room (the room must require approval)."""
        room = access.room_get_managed(ref, request.user)
        spectator = get_object_or_404(Spectator.objects.select_related("room", "user"), pk=spectator_id, room=room)
        join_request = moderation.spectator_send_to_waiting(
            spectator=spectator, actor=request.user, ip=client_ip(request)
        )
        return Response(s.JoinRequestSerializer(join_request).data)


# --- Moderators --------------------------------------------------------------------------------


class ModeratorListCreateApi(APIView):
    @extend_schema(responses={200: s.ModeratorSerializer(many=True), **ERRORS})
    def get(self, request, ref):
        """List the room's moderators (besides its creator)."""
        room = access.room_get_managed(ref, request.user)
        return Response(s.ModeratorSerializer(selectors.moderator_list(room), many=True).data)

    @extend_schema(request=s.ModeratorCreateInputSerializer, responses={201: s.ModeratorSerializer, **ERRORS})
    def post(self, request, ref):
        """Name a user moderator (idempotent: 200 when they already are)."""
        data = s.ModeratorCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        room = access.room_get_managed(ref, request.user)
        moderator, created = moderation.moderator_add(
            room=room, username=data.validated_data["username"], actor=request.user, ip=client_ip(request)
        )
        return Response(
            s.ModeratorSerializer(moderator).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class ModeratorRemoveApi(APIView):
    @extend_schema(responses={204: None, **ERRORS})
    def delete(self, request, ref, username):
        """Take a moderator's powers away."""
        room = access.room_get_managed(ref, request.user)
        moderator = get_object_or_404(
            RoomModerator.objects.select_related("room", "user"), room=room, user__username=username
        )
        moderation.moderator_remove(moderator=moderator, actor=request.user, ip=client_ip(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Timeouts ----------------------------------------------------------------------------------


class TimeoutListCreateApi(APIView):
    @extend_schema(responses={200: s.TimeoutSerializer(many=True), **ERRORS})
    def get(self, request, ref):
        """List the room's running timeouts."""
        room = access.room_get_managed(ref, request.user)
        return Response(s.TimeoutSerializer(selectors.timeout_list(room), many=True).data)

    @extend_schema(request=s.TimeoutCreateInputSerializer, responses={201: s.TimeoutSerializer, **ERRORS})
    def post(self, request, ref):
        """Time out a user (by username) or a present spectator (by id): they leave now and cannot
        return until ``duration_seconds`` pass."""
        data = s.TimeoutCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        room = access.room_get_managed(ref, request.user)
        user, spectator = moderation_target(room, v)
        timeout = moderation.timeout_create(
            room=room,
            actor=request.user,
            user=user,
            spectator=spectator,
            duration_seconds=v["duration_seconds"],
            reason=v["reason"],
            ip=client_ip(request),
        )
        return Response(s.TimeoutSerializer(timeout).data, status=status.HTTP_201_CREATED)


class TimeoutEndApi(APIView):
    @extend_schema(responses={204: None, **ERRORS})
    def delete(self, request, ref, ban_id):
        """End a timeout early."""
        room = access.room_get_managed(ref, request.user)
        timeout = get_object_or_404(Ban, pk=ban_id, room=room, expires_at__isnull=False)
        services.ban_lift(ban=timeout, actor=request.user, ip=client_ip(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Invite links ------------------------------------------------------------------------------


def invite_url(request, room, token: str) -> str:
    return request.build_absolute_uri(f"{reverse('room', kwargs={'code': room.code})}?invite={token}")


class InviteLinkListCreateApi(APIView):
    @extend_schema(responses={200: s.InviteLinkSerializer(many=True), **ERRORS})
    def get(self, request, ref):
        """List the room's invite links that are not revoked (their tokens are never shown again)."""
        room = access.room_get_managed(ref, request.user)
        return Response(s.InviteLinkSerializer(selectors.invite_link_list(room), many=True).data)

    @extend_schema(request=s.InviteLinkCreateInputSerializer, responses={201: s.InviteLinkCreatedSerializer, **ERRORS})
    def post(self, request, ref):
        """Create an invite link; its token and URL are shown once."""
        data = s.InviteLinkCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        room = access.room_get_managed(ref, request.user)
        link, token = invite_links.invite_link_create(
            room=room,
            actor=request.user,
            username=v.get("username") or None,
            grants_password=v["grants_password"],
            expires_in_hours=v["expires_in_hours"],
            label=v["label"],
            ip=client_ip(request),
        )
        body = {**s.InviteLinkSerializer(link).data, "token": token, "url": invite_url(request, room, token)}
        return Response(body, status=status.HTTP_201_CREATED)


class InviteLinkRevokeApi(APIView):
    @extend_schema(responses={204: None, **ERRORS})
    def delete(self, request, ref, link_id):
        """Revoke an invite link; who joined with it stays."""
        room = access.room_get_managed(ref, request.user)
        link = get_object_or_404(InviteLink.objects.select_related("room", "user"), pk=link_id, room=room)
        invite_links.invite_link_revoke(link=link, actor=request.user, ip=client_ip(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Audit -------------------------------------------------------------------------------------


class AuditListApi(APIView):
    pagination_class = Pagination  # for the schema: the list is paginated

    @extend_schema(responses={200: s.AuditEntrySerializer(many=True), **ERRORS})
    def get(self, request, ref):
        """List the room's audit trail, newest first."""
        room = access.room_get_managed(ref, request.user)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(selectors.audit_list(room=room), request, view=self)
        return paginator.get_paginated_response(s.AuditEntrySerializer(page, many=True).data)


class AuditCsvApi(APIView):
    @extend_schema(
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="The room's audit trail as CSV."),
            **ERRORS,
        }
    )
    def get(self, request, ref):
        """Download the room's audit trail as CSV, newest first."""
        room = access.room_get_managed(ref, request.user)
        response = StreamingHttpResponse(
            exports.audit_csv_chunks(selectors.audit_list(room=room)), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="audit-{room.code}.csv"'
        return response
