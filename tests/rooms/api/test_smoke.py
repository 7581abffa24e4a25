def test_create_and_join_public_room(owner, training_session, api_client):
    client = api_client(owner)
    response = client.post(
        "/api/v1/rooms/",
        {"training_session_id": training_session.id, "access_control": {"access_level": "public"}},
        format="json",
    )
    assert response.status_code == 201, response.json()
    code = response.json()["room_code"]
    joined = api_client().post(f"/api/v1/rooms/{code}/join/", {"display_name": "Ann"}, format="json")
    assert joined.status_code == 200, joined.json()
    assert joined.json()["websocket_url"].startswith("ws://testserver/ws/rooms/")
