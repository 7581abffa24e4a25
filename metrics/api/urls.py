from django.urls import path

from metrics.api import views

urlpatterns = [
    path("sessions/", views.TrainingSessionListCreateApi.as_view(), name="training-session-list"),
    path(
        "sessions/<str:training_session_id>/", views.TrainingSessionDetailApi.as_view(), name="training-session-detail"
    ),
    path(
        "sessions/<str:training_session_id>/close/",
        views.TrainingSessionCloseApi.as_view(),
        name="training-session-close",
    ),
]
