"""The demo trainer: a Q-learning agent learns CartPole live, streamed to a public room.

``./run`` starts it next to the server (``SPECTATOR_DEMO=0`` or ``./run --no-demo`` to skip).
It is an ordinary client: it holds an API token, checks its room with ``SpectatorManager``
and streams through ``SpectatorStream``, exactly as a user's training script would. numpy and
Gymnasium's CartPole only; frames are drawn with numpy and sent as small PNGs.

    python -m spectator_demo --url http://127.0.0.1:8000 --config var/demo.json
"""

# Shared with ``manage.py demo_setup``, which prepares the demo's account, session and room.
GAME = "CartPole"
ALGORITHM = "Q-learning"
ROOM_NAME = f"Demo: {GAME} ({ALGORITHM})"
TRAINING_SESSION_ID = "demo-cartpole"
USERNAME = "demo"
# Seats in the demo's public room.
SEATS = 1000
