from django.urls import path

from metrics.api import recording_views, views

urlpatterns = [
    path("sessions/", views.TrainingSessionListCreateApi.as_view(), name="training-session-list"),
    # Downloads: explicit suffix paths (DESIGN.md section 5), listed before the session's own routes.
    *(
        path(
            f"sessions/<str:training_session_id>/metrics.{export_format}",
            views.MetricExportApi.as_view(export_format=export_format),
            name=f"metric-export-{export_format}",
        )
        for export_format in ("csv", "json", "ndjson")
    ),
    path(
        "sessions/<str:training_session_id>/recordings/<int:episode>.json",
        recording_views.RecordedEpisodeExportApi.as_view(),
        name="recorded-episode-export",
    ),
    path(
        "sessions/<str:training_session_id>/", views.TrainingSessionDetailApi.as_view(), name="training-session-detail"
    ),
    path(
        "sessions/<str:training_session_id>/close/",
        views.TrainingSessionCloseApi.as_view(),
        name="training-session-close",
    ),
    path("sessions/<str:training_session_id>/ingest/", views.MetricsIngestApi.as_view(), name="metrics-ingest"),
    path("sessions/<str:training_session_id>/frames/", views.FrameIngestApi.as_view(), name="frames-ingest"),
    path("sessions/<str:training_session_id>/status/", views.TrainingStatusApi.as_view(), name="training-status"),
    path("sessions/<str:training_session_id>/metrics/", views.MetricHistoryApi.as_view(), name="metric-history"),
    path("sessions/<str:training_session_id>/history/", views.MetricSeriesApi.as_view(), name="metric-series"),
    path(
        "sessions/<str:training_session_id>/recordings/",
        recording_views.RecordedEpisodeListApi.as_view(),
        name="recorded-episode-list",
    ),
    path(
        "sessions/<str:training_session_id>/recordings/<int:episode>/",
        recording_views.RecordedEpisodeDetailApi.as_view(),
        name="recorded-episode-detail",
    ),
    path(
        "sessions/<str:training_session_id>/summary/",
        views.TrainingSessionSummaryApi.as_view(),
        name="training-session-summary",
    ),
    path("compare/", views.TrainingSessionComparisonApi.as_view(), name="training-session-comparison"),
]
