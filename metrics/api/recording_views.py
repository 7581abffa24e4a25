"""Recorded episodes API: list a session's recordings, show or delete one, export one as JSON.

Reading is for the session's owner, staff and spectators admitted to one of its rooms, as
for the metric exports (anyone else gets 404); deleting is for the owner and staff.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, status
from rest_framework.exceptions import NotFound
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from metrics import recording_selectors, recording_services
from metrics.api.recording_serializers import (
    RecordedEpisodeExportQuerySerializer,
    RecordedEpisodeListQuerySerializer,
    RecordedEpisodeSerializer,
)
from metrics.api.views import (
    ERRORS,
    VISITOR_TOKEN,
    FirstRendererNegotiation,
    _get_managed,
    _get_viewable,
    streaming_download,
)
from metrics.models import RecordedEpisode
from rooms.api.serializers import ErrorSerializer


class RecordedEpisodePagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 500


def _recorded_episode(training_session, episode: int) -> RecordedEpisode:
    try:
        return recording_selectors.recorded_episode_get(training_session.pk, episode)
    except RecordedEpisode.DoesNotExist:
        raise NotFound(f"Episode {episode} is not recorded (or no longer kept).") from None


class RecordedEpisodeListApi(APIView):
    permission_classes = [permissions.AllowAny]
    pagination_class = RecordedEpisodePagination  # for the schema: the list is paginated

    @extend_schema(
        parameters=[RecordedEpisodeListQuerySerializer],
        responses={200: RecordedEpisodeSerializer(many=True), **ERRORS},
    )
    def get(self, request, training_session_id):
        """The session's recorded episodes (newest first unless ``ordering`` says otherwise), paginated."""
        session = _get_viewable(request, training_session_id)
        query = RecordedEpisodeListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        rows = recording_selectors.recorded_episode_list(session.pk, ordering=query.validated_data["ordering"])
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(rows, request, view=self)
        return paginator.get_paginated_response(RecordedEpisodeSerializer(page, many=True).data)


class RecordedEpisodeDetailApi(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(parameters=[VISITOR_TOKEN], responses={200: RecordedEpisodeSerializer, **ERRORS})
    def get(self, request, training_session_id, episode):
        """One recorded episode's summary."""
        session = _get_viewable(request, training_session_id)
        return Response(RecordedEpisodeSerializer(_recorded_episode(session, episode)).data)

    @extend_schema(responses={204: None, 403: ErrorSerializer, **ERRORS})
    def delete(self, request, training_session_id, episode):
        """Delete a recorded episode (the session's owner or staff)."""
        if not request.user.is_authenticated:
            raise NotFound("No such training session.")
        session = _get_managed(training_session_id, request.user)
        recording_services.recording_episode_discard(
            recorded_episode=_recorded_episode(session, episode), actor=request.user
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class RecordedEpisodeExportApi(APIView):
    permission_classes = [permissions.AllowAny]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = FirstRendererNegotiation

    @extend_schema(
        parameters=[RecordedEpisodeExportQuerySerializer],
        responses={(200, "application/json"): OpenApiTypes.OBJECT, **ERRORS},
    )
    def get(self, request, training_session_id, episode):
        """Download one recorded episode as JSON, streamed: its summary, metrics, decisions and frames.

        ``{"format", "training_session_id", "episode", "recording": {...}, "metrics": {...} | null,
        "decisions": [{step, timestamp, action_probabilities, state_values, q_values,
        selected_action, ...}], "frames": [{step, timestamp, mime, size, data}]}``, in the order
        recorded; frame ``data`` is the image in base64 (``frames=none`` leaves it out).
        """
        session = _get_viewable(request, training_session_id)
        query = RecordedEpisodeExportQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        row = _recorded_episode(session, episode)
        chunks = recording_selectors.recorded_episode_export_chunks(row, frames=query.validated_data["frames"])
        return streaming_download(
            request,
            chunks,
            content_type="application/json",
            filename=f"{session.pk}-episode-{row.episode}.json",
        )
