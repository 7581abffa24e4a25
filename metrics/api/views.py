"""Training session API."""

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from metrics import selectors, services
from metrics.api.serializers import TrainingSessionCreateInputSerializer, TrainingSessionSerializer
from metrics.models import TrainingSession
from rooms import access
from rooms.api.serializers import ErrorSerializer

ERRORS = {400: ErrorSerializer, 401: ErrorSerializer, 404: ErrorSerializer}


def _get_managed(training_session_id, user) -> TrainingSession:
    try:
        return access.training_session_get_managed(training_session_id, user)
    except TrainingSession.DoesNotExist:
        raise NotFound("No such training session.") from None


class TrainingSessionListCreateApi(APIView):
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
    @extend_schema(responses={200: TrainingSessionSerializer, **ERRORS})
    def get(self, request, training_session_id):
        """Show one of the caller's training sessions."""
        return Response(TrainingSessionSerializer(_get_managed(training_session_id, request.user)).data)


class TrainingSessionCloseApi(APIView):
    @extend_schema(request=None, responses={200: TrainingSessionSerializer, **ERRORS})
    def post(self, request, training_session_id):
        """Close a training session and every live room that shows it."""
        session = services.training_session_close(
            training_session=_get_managed(training_session_id, request.user), actor=request.user
        )
        return Response(TrainingSessionSerializer(session).data)
