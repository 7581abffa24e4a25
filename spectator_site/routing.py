from django.urls import path

from metrics.consumers import IngestConsumer
from rooms.consumers import RoomConsumer

websocket_urlpatterns = [
    path("ws/rooms/<str:room_code>/", RoomConsumer.as_asgi()),
    path("ws/ingest/<str:training_session_id>/", IngestConsumer.as_asgi()),
]
