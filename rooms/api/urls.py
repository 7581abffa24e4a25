from django.urls import path

from rooms.api import moderation_views as mv
from rooms.api import views

urlpatterns = [
    path("rooms/", views.RoomListCreateApi.as_view(), name="room-list"),
    path("rooms/public/", views.RoomPublicListApi.as_view(), name="room-public-list"),
    path("rooms/<str:ref>/", views.RoomDetailApi.as_view(), name="room-detail"),
    path("rooms/<str:ref>/close/", views.RoomCloseApi.as_view(), name="room-close"),
    path("rooms/<str:ref>/password/", views.RoomPasswordRegenerateApi.as_view(), name="room-password"),
    path("rooms/<str:ref>/access/", views.RoomAccessUpdateApi.as_view(), name="room-access"),
    path("rooms/<str:ref>/join/", views.RoomJoinApi.as_view(), name="room-join"),
    path("rooms/<str:ref>/leave/", views.RoomLeaveApi.as_view(), name="room-leave"),
    path("rooms/<str:ref>/join-requests/", views.JoinRequestListApi.as_view(), name="join-request-list"),
    path(
        "rooms/<str:ref>/join-requests/<int:request_id>/approve/",
        views.JoinRequestApproveApi.as_view(),
        name="join-request-approve",
    ),
    path(
        "rooms/<str:ref>/join-requests/<int:request_id>/deny/",
        views.JoinRequestDenyApi.as_view(),
        name="join-request-deny",
    ),
    path("rooms/<str:ref>/invitations/", views.InvitationListCreateApi.as_view(), name="invitation-list"),
    path(
        "rooms/<str:ref>/invitations/<int:invitation_id>/",
        views.InvitationRevokeApi.as_view(),
        name="invitation-revoke",
    ),
    path("rooms/<str:ref>/spectators/", views.SpectatorListApi.as_view(), name="spectator-list"),
    path(
        "rooms/<str:ref>/spectators/<int:spectator_id>/kick/",
        views.SpectatorKickApi.as_view(),
        name="spectator-kick",
    ),
    path("rooms/<str:ref>/bans/", views.BanListCreateApi.as_view(), name="ban-list"),
    path("rooms/<str:ref>/bans/<int:ban_id>/", views.BanLiftApi.as_view(), name="ban-lift"),
    path("rooms/<str:ref>/lock/", mv.RoomLockApi.as_view(), name="room-lock"),
    path("rooms/<str:ref>/unlock/", mv.RoomUnlockApi.as_view(), name="room-unlock"),
    path(
        "rooms/<str:ref>/join-requests/admit-all/", mv.JoinRequestAdmitAllApi.as_view(), name="join-request-admit-all"
    ),
    path(
        "rooms/<str:ref>/spectators/<int:spectator_id>/send-to-waiting/",
        mv.SpectatorSendToWaitingApi.as_view(),
        name="spectator-send-to-waiting",
    ),
    path("rooms/<str:ref>/moderators/", mv.ModeratorListCreateApi.as_view(), name="moderator-list"),
    path("rooms/<str:ref>/moderators/<str:username>/", mv.ModeratorRemoveApi.as_view(), name="moderator-remove"),
    path("rooms/<str:ref>/timeouts/", mv.TimeoutListCreateApi.as_view(), name="timeout-list"),
    path("rooms/<str:ref>/timeouts/<int:ban_id>/", mv.TimeoutEndApi.as_view(), name="timeout-end"),
    path("rooms/<str:ref>/invite-links/", mv.InviteLinkListCreateApi.as_view(), name="invite-link-list"),
    path("rooms/<str:ref>/invite-links/<int:link_id>/", mv.InviteLinkRevokeApi.as_view(), name="invite-link-revoke"),
    path("rooms/<str:ref>/audit/", mv.AuditListApi.as_view(), name="audit-list"),
    path("rooms/<str:ref>/audit.csv", mv.AuditCsvApi.as_view(), name="audit-csv"),
]
