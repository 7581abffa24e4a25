def test_api_404_is_json(client, db):
    r = client.get("/api/v1/nope/")
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    assert client.get("/nope/").status_code == 404
