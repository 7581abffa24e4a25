"""The OpenAPI document at /api/schema/ and the docs pages, which load nothing from other hosts."""

import re

import pytest
import yaml
from django.contrib.staticfiles import finders
from drf_spectacular.drainage import GENERATOR_STATS, reset_generator_stats
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema

from metrics.api import urls as metrics_urls
from rooms.api import urls as rooms_urls

HTTP_METHODS = ("get", "post", "put", "patch", "delete")


def api_operations() -> dict[str, set[str]]:
    """Every ``/api/v1/`` path in OpenAPI form, with the methods its view implements."""
    operations = {}
    for pattern in [*rooms_urls.urlpatterns, *metrics_urls.urlpatterns]:
        path = "/api/v1/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", str(pattern.pattern))
        view = pattern.callback.view_class
        operations[path] = {method for method in HTTP_METHODS if hasattr(view, method)}
    return operations


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    from rest_framework.test import APIClient

    with django_db_blocker.unblock():
        response = APIClient().get("/api/schema/?format=json")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi+json")
    return response.json()


def test_schema_is_a_valid_openapi_document(schema):
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "Spectator API"
    validate_schema(schema)


def test_schema_generates_without_warnings():
    reset_generator_stats()

    SchemaGenerator().get_schema(request=None, public=True)

    assert not GENERATOR_STATS, "drf-spectacular warned while building the schema"


def test_schema_lists_every_path_and_method(schema):
    expected = api_operations()

    assert len(expected) == len(rooms_urls.urlpatterns) + len(metrics_urls.urlpatterns)
    assert set(schema["paths"]) == set(expected)
    for path, methods in expected.items():
        assert set(schema["paths"][path]) - {"parameters"} == methods, path


def test_operation_ids_are_unique(schema):
    ids = [operation["operationId"] for item in schema["paths"].values() for operation in item.values()]

    assert len(ids) == len(set(ids))


def test_schema_documents_token_and_session_auth(schema):
    schemes = schema["components"]["securitySchemes"]

    assert schemes["apiToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["apiToken"]["description"],
    }
    assert schemes["cookieAuth"]["in"] == "cookie"
    create = schema["paths"]["/api/v1/rooms/"]["post"]
    assert {"apiToken": []} in create["security"]
    assert {"cookieAuth": []} in create["security"]


def test_schema_documents_the_error_shape(schema):
    error = schema["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"error", "detail"}
    assert "fields" in error["properties"]
    join = schema["paths"]["/api/v1/rooms/{ref}/join/"]["post"]["responses"]
    assert {"200", "202", "400", "401", "403", "404", "409", "410", "429"} <= set(join)
    for code in ("400", "403", "404", "409", "410", "429"):
        assert join[code]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


def test_schema_shows_room_password_only_on_creation(schema):
    schemas = schema["components"]["schemas"]
    created = schema["paths"]["/api/v1/rooms/"]["post"]["responses"]["201"]["content"]["application/json"]["schema"]
    detail = schema["paths"]["/api/v1/rooms/{ref}/"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]

    assert "room_password" in schemas[created["$ref"].rsplit("/", 1)[1]]["properties"]
    assert "room_password" not in schemas[detail["$ref"].rsplit("/", 1)[1]]["properties"]


def test_schema_as_yaml_by_default(client, schema):
    response = client.get("/api/schema/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi")
    assert yaml.safe_load(response.content) == schema


@pytest.mark.parametrize("path", ["/api/docs/", "/api/docs/redoc/"])
def test_docs_page_loads_only_local_assets(client, db, path):
    response = client.get(path)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert "/api/schema/" in html
    assert not re.search(r"https?://|(?<![:\w])//[\w.-]+\.\w", html), "the docs page references another host"
    assets = re.findall(r"""<(?:script|link|img)\b[^>]*?\b(?:src|href)=["']([^"']+)["']""", html)
    assert assets
    for asset in assets:
        assert asset.startswith("/static/"), asset
        assert finders.find(asset.removeprefix("/static/")), f"{asset} is not a static file we ship"
