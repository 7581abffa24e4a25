"""Assertions on the API's one JSON error shape (``spectator_site/api_errors.py``).

``{"error": "<code>", "detail": "<message>", "fields": {"<field>": ["<message>", ...]}}``
"""


def assert_api_error(response, status: int, error: str, *fields: str) -> dict:
    """Check the status, the JSON body's ``error`` and ``detail``, and that ``fields`` names each field.

    A ``validation_error`` must name at least one field; its ``detail`` starts with the first.
    Returns the body for further checks.
    """
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert body["error"] == error, body
    assert isinstance(body["detail"], str) and body["detail"], body
    if error == "validation_error":
        assert body.get("fields"), body
        first = next(iter(body["fields"]))
        assert body["detail"].startswith(f"{first}: "), body
    for field in fields:
        assert field in body.get("fields", {}), (field, body)
        messages = body["fields"][field]
        assert messages and all(isinstance(message, str) and message for message in messages), body
    return body
