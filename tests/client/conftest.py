"""The client tests run against a real server: see ``tests/support/live_server.py`` (its fixtures,
``spectator_server``, ``make_server`` and ``unique``, come through ``tests/conftest.py``)."""


def pytest_configure(config):
    config.addinivalue_line("markers", "websocket: needs the server's room WebSocket (/ws/rooms/<code>/)")
