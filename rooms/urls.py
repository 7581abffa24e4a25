from django.urls import path

from rooms import comparison_views, views

urlpatterns = [
    path("", views.lobby, name="lobby"),
    path("r/", views.room_go, name="room-go"),
    path("r/<str:code>/", views.room_page, name="room"),
    path("my/", views.my_home, name="my-home"),
    path("my/rooms/new/", views.my_room_create, name="my-room-create"),
    path("my/rooms/<str:code>/", views.my_room, name="my-room"),
    path("compare/", comparison_views.comparison_page, name="compare"),
]
