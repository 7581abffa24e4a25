"""Training session API: sessions, ingest (metrics, decisions, frames, status), history and exports."""

from collections.abc import Iterator

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.handlers.asgi import ASGIRequest
from django.http import StreamingHttpResponse
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.parsers import BaseParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from metrics import exports, selectors, services
from metrics.api.recording_serializers import TrainingSessionDetailSerializer, TrainingSessionUpdateInputSerializer
from metrics.api.serializers import (
    ComparisonQuerySerializer,
    ComparisonSerializer,
    ExportQuerySerializer,
    HistoryQuerySerializer,
    IngestInputSerializer,
    IngestResultSerializer,
    MetricHistorySerializer,
    MetricPointSerializer,
    RunSummarySerializer,
    StatusInputSerializer,
    SummaryQuerySerializer,
    TrainingSessionCreateInputSerializer,
    TrainingSessionSerializer,
)
from metrics.events import KIND_FRAME, decision_items, metrics_data, publish_stream, publish_stream_after_commit
from metrics.ingest import MAX_FRAME_HEADER, IngestError, decisions_clean, frame_pack, frame_parse, metric_points_clean
from metrics.models import TrainingSession
from metrics.recorder import recorder
from metrics.recording_services import recording_policy_set
from rooms import access
from rooms.api.serializers import ErrorSerializer
from rooms.api.views import visitor_from_request
from spectator_site.api_errors import error_response
from spectator_site.observability import ingest_points_rejected


class FrameParser(BaseParser):
    media_type = "application/octet-stream"

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.SPECTATOR_MAX_FRAME_BYTES + MAX_FRAME_HEADER + 4
        body = stream.read(limit + 1) if stream is not None else b""
        if len(body) > limit:
            raise ValidationError({"frame.image": [f"At most {settings.SPECTATOR_MAX_FRAME_BYTES} bytes."]})
        return body


ERRORS = {400: ErrorSerializer, 401: ErrorSerializer, 404: ErrorSerializer}


def _get_managed(training_session_id, user) -> TrainingSession:
    try:
        return access.training_session_get_managed(training_session_id, user)
    except TrainingSession.DoesNotExist:
        raise NotFound("No such training session.") from None


class TrainingSessionListCreateApi(APIView):
    pagination_class = LimitOffsetPagination  # for the schema: the list is paginated

    @extend_schema(responses={200: TrainingSessionSerializer(many=True), **ERRORS})
    def get(self, request):
        """List the caller's training sessions, newest first."""
        paginator = LimitOffsetPagination()
        paginator.default_limit, paginator.max_limit = 50, 200
        page = paginator.paginate_queryset(selectors.training_session_list_for_user(request.user), request, view=self)
        return paginator.get_paginated_response(TrainingSessionSerializer(page, many=True).data)

    @extend_schema(
        request=TrainingSessionCreateInputSerializer,
        responses={201: TrainingSessionSerializer, 200: TrainingSessionSerializer, 409: ErrorSerializer, **ERRORS},
    )
    def post(self, request):
        """Create a training session; with an ``id`` the caller already owns, return it (200)."""
        data = TrainingSessionCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        session, created = services.training_session_create(owner=request.user, **data.validated_data)
        return Response(
            TrainingSessionSerializer(session).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class TrainingSessionDetailApi(APIView):
    @extend_schema(responses={200: TrainingSessionDetailSerializer, **ERRORS})
    def get(self, request, training_session_id):
        """Show one of the caller's training sessions, with its recording settings."""
        return Response(TrainingSessionDetailSerializer(_get_managed(training_session_id, request.user)).data)

    @extend_schema(
        request=TrainingSessionUpdateInputSerializer, responses={200: TrainingSessionDetailSerializer, **ERRORS}
    )
    def patch(self, request, training_session_id):
        """Change a training session's recording settings (``{"recording": {"mode": "every_nth", "every_n": 5}}``)."""
        session = _get_managed(training_session_id, request.user)
        data = TrainingSessionUpdateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            recording_policy_set(training_session=session, actor=request.user, **data.validated_data["recording"])
        except DjangoValidationError as exc:
            raise ValidationError({"recording": exc.message_dict}) from None
        return Response(TrainingSessionDetailSerializer(session).data)


class TrainingSessionCloseApi(APIView):
    @extend_schema(request=None, responses={200: TrainingSessionSerializer, **ERRORS})
    def post(self, request, training_session_id):
        """Close a training session and every live room that shows it."""
        session = services.training_session_close(
            training_session=_get_managed(training_session_id, request.user), actor=request.user
        )
        return Response(TrainingSessionSerializer(session).data)


def _ingest_error(exc: IngestError) -> Response:
    return error_response(
        "validation_error",
        f"{exc.field}: {exc.message}",
        status.HTTP_400_BAD_REQUEST,
        fields={exc.field: [exc.message]},
    )


def _get_ingestable(training_session_id, user) -> TrainingSession:
    session = _get_managed(training_session_id, user)
    if not access.can_ingest(user, session):
        raise ValidationError({"training_session_id": ["This training session is closed."]})
    return session


class MetricsIngestApi(APIView):
    @extend_schema(request=IngestInputSerializer, responses={200: IngestResultSerializer, **ERRORS})
    def post(self, request, training_session_id):
        """Append a batch of metric points (and broadcast decisions) to a training session.

        Each point carries ``stream`` and ``seq``; resending a batch stores nothing twice.
        """
        session = _get_ingestable(training_session_id, request.user)
        body = request.data
        if not isinstance(body, dict):
            return _ingest_error(IngestError("body", "Must be a JSON object."))
        try:
            points = metric_points_clean(body.get("points", []), default_stream=str(body.get("stream") or ""))
            decisions = decisions_clean(body.get("decisions", []))
        except IngestError as exc:
            ingest_points_rejected(body.get("points", []))
            return _ingest_error(exc)
        result = services.metric_points_append(training_session=session, points=points)
        if decisions:
            publish_stream_after_commit(session.pk, decision_items(decisions))
        recorder.submit(session.pk, decisions=decisions, points=points if result.accepted else ())
        return Response(
            {
                "accepted": result.accepted,
                "duplicates": result.duplicates,
                "last_seq": result.last_seq,
                "decisions": len(decisions),
            }
        )


class FrameIngestApi(APIView):
    parser_classes = [FrameParser]

    @extend_schema(
        request={"application/octet-stream": {"type": "string", "format": "binary"}},
        responses={202: None, **ERRORS},
    )
    def post(self, request, training_session_id):
        """Broadcast one game frame: 4-byte big-endian header length, JSON header, image bytes."""
        session = _get_ingestable(training_session_id, request.user)
        try:
            header, image = frame_parse(request.data)
        except IngestError as exc:
            return _ingest_error(exc)
        header["training_session_id"] = session.pk
        publish_stream(session.pk, [(KIND_FRAME, frame_pack(header, image))])
        recorder.submit(session.pk, frames=[(header, image)])
        return Response({"accepted": 1}, status=status.HTTP_202_ACCEPTED)


class TrainingStatusApi(APIView):
    @extend_schema(request=StatusInputSerializer, responses={200: TrainingSessionSerializer, **ERRORS})
    def post(self, request, training_session_id):
        """Set the trainer's status (running, paused, completed); rooms get a training_status."""
        data = StatusInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        session = services.training_session_status_set(
            training_session=_get_managed(training_session_id, request.user), **data.validated_data
        )
        return Response(TrainingSessionSerializer(session).data)


def _get_viewable(request, training_session_id) -> TrainingSession:
    """The session if the caller may watch it (owner, staff, admitted spectator); else 404."""
    session = TrainingSession.objects.filter(pk=training_session_id).first()
    visitor, _token = visitor_from_request(request, request.query_params.get("visitor_token", ""))
    if session is None or not access.can_view_training_session(visitor, session):
        raise NotFound("No such training session.")
    return session


VISITOR_TOKEN = OpenApiParameter("visitor_token", str, description="Anonymous spectators: the token from the join.")


class MetricHistoryApi(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        parameters=[
            OpenApiParameter("after_id", int, description="Only points stored after this id (backfill)."),
            OpenApiParameter("limit", int, description="At most this many points (1-5000, default 1000)."),
            VISITOR_TOKEN,
        ],
        responses={200: MetricPointSerializer(many=True), **ERRORS},
    )
    def get(self, request, training_session_id):
        """Stored metric points after an id, oldest first; for owners and admitted spectators."""
        session = _get_viewable(request, training_session_id)
        numbers = {}
        for name, default in (("after_id", 0), ("limit", 1000)):
            try:
                numbers[name] = int(request.query_params.get(name, default))
            except ValueError:
                raise ValidationError({name: ["Must be an integer."]}) from None
        after_id, limit = numbers["after_id"], numbers["limit"]
        if not 1 <= limit <= 5000:
            raise ValidationError({"limit": ["Between 1 and 5000."]})
        rows = selectors.metric_points_after(session.pk, after_id=max(0, after_id), limit=limit)
        return Response([{"id": row["id"], "data": metrics_data(row)} for row in rows])


class MetricSeriesApi(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(parameters=[HistoryQuerySerializer], responses={200: MetricHistorySerializer, **ERRORS})
    def get(self, request, training_session_id):
        """Curves of chosen metrics over any episode or time range, downsampled to ``points``.

        Every bucket's min and max survive, so spikes show; ``smooth`` adds each curve's EMA,
        and ``current_reward`` carries its 'new best' markers. For owners and admitted spectators.
        """
        session = _get_viewable(request, training_session_id)
        query = HistoryQuerySerializer(data=request.query_params, context={"training_session": session})
        query.is_valid(raise_exception=True)
        data = query.validated_data
        return Response(
            selectors.metric_history(
                session,
                metrics=data["metrics"],
                x=data["x"],
                window=query.window(),
                points=data["points"],
                smooth=data.get("smooth"),
            )
        )


class FirstRendererNegotiation(BaseContentNegotiation):
    """Errors of a download answer in the API's JSON whatever the client accepts (no 406)."""

    def select_parser(self, request, parsers):
        return parsers[0]

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class MetricExportApi(APIView):
    permission_classes = [permissions.AllowAny]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = FirstRendererNegotiation
    export_format = "csv"

    @extend_schema(
        parameters=[ExportQuerySerializer],
        # The JSON download is an array of points (clients parse it); CSV and NDJSON are opaque text.
        responses={
            (200, media_type): {"type": "array", "items": {"type": "object"}}
            if media_type == exports.FORMATS["json"]
            else OpenApiTypes.BINARY
            for media_type in exports.FORMATS.values()
        }
        | ERRORS,
    )
    def get(self, request, training_session_id):
        """Download a session's metric history (CSV, JSON or NDJSON by the path), streamed.

        Filter by episode and time range and pick fields; for owners and admitted spectators.
        """
        session = _get_viewable(request, training_session_id)
        query = ExportQuerySerializer(data=request.query_params, context={"training_session": session})
        query.is_valid(raise_exception=True)
        data = query.validated_data
        layout = exports.ExportLayout(
            tuple(data.get("fields") or exports.export_fields_default(session, self.export_format))
        )
        chunks = selectors.metric_point_chunks(session.pk, window=query.window(), columns=layout.columns)
        filename = exports.export_filename(
            session, self.export_format, episode_from=data.get("episode_from"), episode_to=data.get("episode_to")
        )
        return streaming_download(
            request,
            exports.FORMATTERS[self.export_format](chunks, layout),
            content_type=exports.FORMATS[self.export_format],
            filename=filename,
        )


def streaming_download(request, chunks: Iterator[bytes], *, content_type: str, filename: str) -> StreamingHttpResponse:
    """Stream ``chunks`` as an attachment without ever holding the whole body.

    Under ASGI, Django would collect a synchronous iterator into a list before sending it,
    so there each chunk is produced in the request's sync thread and handed over one by one.
    """
    if isinstance(getattr(request, "_request", request), ASGIRequest):
        content = _chunks_async(chunks)
    else:
        content = chunks
    response = StreamingHttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = content_disposition_header(True, filename)
    response["Cache-Control"] = "private, no-store"
    return response


async def _chunks_async(chunks: Iterator[bytes]):
    next_chunk = sync_to_async(next, thread_sensitive=True)
    try:
        while (chunk := await next_chunk(chunks, None)) is not None:
            yield chunk
    finally:
        await sync_to_async(chunks.close, thread_sensitive=True)()


class TrainingSessionSummaryApi(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(parameters=[SummaryQuerySerializer], responses={200: RunSummarySerializer, **ERRORS})
    def get(self, request, training_session_id):
        """Sum up a run: best and average reward (overall and recent), latest win rate, episodes and pace.

        For owners and admitted spectators.
        """
        session = _get_viewable(request, training_session_id)
        query = SummaryQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        summary = selectors.training_session_summary(session, last=query.validated_data["last"])
        return Response(RunSummarySerializer(summary).data)


class TrainingSessionComparisonApi(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(parameters=[ComparisonQuerySerializer], responses={200: ComparisonSerializer, **ERRORS})
    def get(self, request):
        """Sum up two to four runs side by side, in the order named.

        A session the caller may not read answers 404, as a missing one does.
        """
        params = request.query_params
        query = ComparisonQuerySerializer(data={**params.dict(), "sessions": ",".join(params.getlist("sessions"))})
        query.is_valid(raise_exception=True)
        data = query.validated_data
        sessions = []
        for training_session_id in data["sessions"]:
            try:
                sessions.append(_get_viewable(request, training_session_id))
            except NotFound:
                raise NotFound(f"No such training session: {training_session_id}.") from None
        summaries = [selectors.training_session_summary(session, last=data["last"]) for session in sessions]
        return Response(ComparisonSerializer({"last": data["last"], "sessions": summaries}).data)
