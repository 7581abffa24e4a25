"""room_open (room=True in every integration): a room for the run, reused while it is live."""

from spectator_client import AccessLevel, SpectatorStream
from spectator_client.integrations import room_open, scalar_key, training_session_id_from


def test_a_room_is_opened_once_and_then_reused(spectator_server, unique, capsys):
    stream = SpectatorStream(unique("room"), spectator_server.url, spectator_server.tokens["alice"])
    try:
        first = room_open(stream, True, name="Run")
        again = room_open(stream, AccessLevel.PUBLIC)
        assert again.room_code == first.room_code and first.access_level == AccessLevel.PUBLIC
        printed = capsys.readouterr().err
        assert f"{spectator_server.url}/r/{first.room_code}/" in printed
        # A password room's password is shown once, so each call opens a new one.
        protected = room_open(stream, "password")
        assert protected.room_password and protected.room_code != first.room_code
        assert protected.room_password in capsys.readouterr().err
        assert room_open(stream, None) is None and room_open(stream, False) is None
    finally:
        stream.close()


def test_ids_and_scalar_names_are_made_valid():
    made = training_session_id_from("runs/Nov24 cart pole!")
    assert made.startswith("runs-Nov24-cart-pole-") and len(made) <= 64
    assert scalar_key("losses/q values (mean)") == "losses/q values _mean_"
    assert len(scalar_key("x" * 100)) == 64 and scalar_key("§") == "_"
