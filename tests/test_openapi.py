"""OpenAPI 3 import (``openapi:PATH_OR_URL``) against a real HTTP API in a subprocess:
tests/fixtures/openapi_app.py serves a pet store and its own OpenAPI document."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from toolpath.errors import CatalogError, ToolArgumentsError, ToolError
from toolpath.tools.catalog import Catalog, load_catalog
from toolpath.tools.catalog.openapi import openapi_catalog

APP = Path(__file__).parent / "fixtures" / "openapi_app.py"
NAMES = {
    "listPets",
    "createPet",
    "bulkCreate",
    "getPet",
    "pets_replace",
    "echo",
    "get_secret",
    "getStats",
    "greet",
    "boom",
    "slow",
}


@pytest.fixture(scope="module")
def api() -> Iterator[str]:
    """The pet store's root URL (it serves /openapi.json and /api/v1/...)."""
    proc = subprocess.Popen([sys.executable, str(APP)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = proc.stdout.readline().strip()
        assert port.isdigit(), f"the API did not start (printed {port!r})"
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def pets(api: str) -> Catalog:
    return openapi_catalog(f"{api}/openapi.json;bearer_env=PETS_TOKEN;api_key_env=PETS_KEY")


@pytest.fixture(scope="module")
def spec(api: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{api}/openapi.json", timeout=10) as response:
        return dict(json.loads(response.read()))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _run(catalog: Catalog, name: str, arguments: dict[str, Any]) -> Any:
    return json.loads(catalog.by_name(name).run(arguments))


# -- loading and schemas ----------------------------------------------------------------------


def test_every_operation_becomes_a_tool_and_the_recursive_one_is_skipped(
    pets: Catalog, api: str
) -> None:
    assert {t.name for t in pets} == NAMES
    assert pets.source == f"openapi:{api}/openapi.json;bearer_env=PETS_TOKEN;api_key_env=PETS_KEY"
    assert len(pets.skipped) == 1
    label, reason = pets.skipped[0]
    assert label == "POST /tree" and "recursive" in reason and "Node" in reason
    assert pets.renamed == {"pets_replace": "pets.replace"}
    assert pets.by_name("pets.replace").name == "pets_replace"
    assert pets.by_name("listPets").context == "Pet Store / pets"
    assert pets.by_name("listPets").description == "List pets. Lists the pets in the store."
    assert pets.by_name("get_secret").description == "Who the caller is."
    assert all(t.timeout == 30 for t in pets)


def test_parameters_keep_descriptions_enums_defaults_formats_and_required(pets: Catalog) -> None:
    listing = pets.by_name("listPets").parameters
    assert listing["properties"]["status"] == {
        "type": "string",
        "enum": ["available", "pending", "sold"],
        "default": "available",
        "description": "Only pets with this status",
    }
    assert listing["properties"]["limit"] == {"type": "integer", "default": 10}
    assert "required" not in listing and listing["additionalProperties"] is False

    get = pets.by_name("getPet").parameters
    assert get["required"] == ["petId"]  # from the path-level $ref; a path param is required
    assert get["properties"]["petId"] == {
        "type": "integer",
        "format": "int64",
        "description": "The pet's id",
    }
    # the operation's own X-Trace wins over the path-level one
    assert get["properties"]["X-Trace"]["description"] == "A trace id the API echoes back"
    replace = pets.by_name("pets_replace").parameters
    assert replace["properties"]["X-Trace"]["description"] == "old"


def test_an_object_body_is_flattened_and_anything_else_is_one_body_argument(
    pets: Catalog,
) -> None:
    create = pets.by_name("createPet").parameters
    assert set(create["properties"]) == {"name", "tag", "status"}  # readOnly id left out
    assert create["required"] == ["name"]
    assert create["properties"]["name"] == {"type": "string", "description": "The pet's name"}
    assert create["properties"]["tag"] == {"type": ["string", "null"]}  # nullable, no example
    assert create["properties"]["status"]["enum"] == ["available", "pending", "sold"]
    assert create["properties"]["status"]["description"] == "Where the pet is in the sale"

    bulk = pets.by_name("bulkCreate").parameters
    assert bulk["required"] == ["body"]
    assert bulk["properties"]["body"]["type"] == "array"
    assert bulk["properties"]["body"]["description"] == "The pets to add"
    assert bulk["properties"]["body"]["items"]["required"] == ["name"]

    replace = pets.by_name("pets_replace").parameters  # allOf: not flattened; body optional
    assert replace["required"] == ["petId"]
    assert "allOf" in replace["properties"]["body"]


def test_a_body_whose_names_clash_with_parameters_stays_whole(tmp_path: Path) -> None:
    doc = {
        "openapi": "3.1.0",
        "info": {"title": "Clash", "version": "1"},
        "servers": [{"url": "https://api.example.com/v2"}],
        "paths": {
            "/items/{id}": {
                "patch": {
                    "requestBody": {
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "id": {"type": "string"},
                                        "n": {"type": "integer"},
                                    },
                                }
                            }
                        }
                    },
                    "parameters": [{"name": "id", "in": "path", "schema": {"type": "string"}}],
                },
                "get": {"operationId": "same", "summary": "one"},
                "delete": {"operationId": "same", "summary": "two"},
            },
            "/upload": {
                "post": {
                    "requestBody": {
                        "required": True,
                        "content": {"multipart/form-data": {"schema": {"type": "object"}}},
                    }
                }
            },
        },
    }
    catalog = openapi_catalog(str(_write(tmp_path / "clash.json", doc)))
    assert [t.name for t in catalog] == ["same", "patch_items_id"]
    patch = catalog.by_name("patch_items_id").parameters
    assert set(patch["properties"]) == {"id", "body"} and patch["required"] == ["id"]
    assert patch["properties"]["body"]["properties"]["n"] == {"type": "integer"}
    reasons = dict(catalog.skipped)
    assert "duplicate tool name 'same'" in reasons["DELETE /items/{id}"]
    assert "multipart/form-data" in reasons["POST /upload"]


# -- calls ------------------------------------------------------------------------------------


def test_calls_fill_path_query_header_and_body_and_return_the_response(pets: Catalog) -> None:
    assert [p["name"] for p in _run(pets, "listPets", {})] == ["Rex", "Polly"]
    assert [p["name"] for p in _run(pets, "listPets", {"status": "sold"})] == ["Tom"]
    assert [p["name"] for p in _run(pets, "listPets", {"limit": 1})] == ["Rex"]
    pet = _run(pets, "getPet", {"petId": "2", "X-Trace": "t-42"})  # "2" coerced to 2
    assert pet == {"id": 2, "name": "Tom", "tag": "cat", "status": "sold", "trace": "t-42"}
    created = _run(pets, "createPet", {"name": "Zoë", "status": "pending"})
    assert created == {"id": 4, "name": "Zoë", "status": "pending"}
    bulk = _run(pets, "bulkCreate", {"body": [{"name": "a"}, {"name": "b"}]})
    assert bulk == {"created": 2, "names": ["a", "b"]}
    echoed = _run(pets, "echo", {"word": "a b/c?d", "tags": ["x", "y"]})
    assert echoed == {"word": "a b/c?d", "tags": ["x", "y"]}  # quoted path, repeated query
    replaced = _run(pets, "pets_replace", {"petId": 3, "body": {"name": "Polly", "id": 3}})
    assert replaced["body"] == {"name": "Polly", "id": 3}
    assert replaced["replaced"].startswith("/api/v1/pets/3")
    assert pets.by_name("greet").run({}) == "Grüße"  # decoded by its Latin-1 charset


def test_arguments_are_checked_before_any_call(pets: Catalog) -> None:
    with pytest.raises(ToolArgumentsError, match="missing required argument 'petId'"):
        pets.by_name("getPet").run({})
    with pytest.raises(ToolArgumentsError, match="unknown argument 'colour'"):
        pets.by_name("listPets").run({"colour": "red"})


def test_http_errors_become_tool_errors_with_method_path_status_and_body(pets: Catalog) -> None:
    with pytest.raises(ToolError) as missing:
        pets.by_name("getPet").run({"petId": 99})
    message = str(missing.value)
    assert message.startswith("getPet: GET /api/v1/pets/99 answered HTTP 404")
    assert "no pet with id 99" in message
    with pytest.raises(ToolError, match=r"boom: GET /api/v1/boom answered HTTP 500 .*kaboom"):
        pets.by_name("boom").run({})


def test_bearer_token_comes_from_the_environment_at_call_time(
    pets: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PETS_TOKEN", "s3cret")
    assert _run(pets, "get_secret", {}) == {"user": "alice"}
    monkeypatch.setenv("PETS_TOKEN", "wrong")
    with pytest.raises(ToolError, match="HTTP 401"):
        pets.by_name("get_secret").run({})
    monkeypatch.delenv("PETS_TOKEN")
    with pytest.raises(ToolError, match="set the environment variable PETS_TOKEN"):
        pets.by_name("get_secret").run({})
    monkeypatch.delenv("PETS_KEY", raising=False)
    assert len(_run(pets, "listPets", {})) == 2  # its security names no scheme: no token needed


def test_api_key_goes_where_the_scheme_says(pets: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PETS_KEY", "k3y")
    assert _run(pets, "getStats", {}) == {"pets": 3}  # sent as ?api_key=
    monkeypatch.setenv("PETS_KEY", "not-the-key")
    with pytest.raises(ToolError, match="HTTP 403") as wrong:
        pets.by_name("getStats").run({})
    assert "not-the-key" not in str(wrong.value)  # the query is not echoed in our message
    monkeypatch.delenv("PETS_KEY")
    with pytest.raises(ToolError, match="set the environment variable PETS_KEY"):
        pets.by_name("getStats").run({})


def test_a_slow_endpoint_times_out_as_a_tool_error(api: str) -> None:
    catalog = openapi_catalog(f"{api}/openapi.json;timeout=0.5")
    assert catalog.by_name("slow").timeout == 0.5
    start = time.monotonic()
    with pytest.raises(ToolError, match=r"timed out after 0\.5s"):
        catalog.by_name("slow").run({})
    assert time.monotonic() - start < 2.5


def test_an_unreachable_api_is_a_tool_error(api: str) -> None:
    dead = f"http://127.0.0.1:{_closed_port()}/api"
    catalog = openapi_catalog(f"{api}/openapi.json;base_url={dead}")
    with pytest.raises(ToolError, match=re.escape(f"greet: cannot reach {dead}")):
        catalog.by_name("greet").run({})


# -- local files and load_catalog -------------------------------------------------------------


def test_a_local_yaml_copy_needs_base_url(api: str, spec: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "pets.yaml"
    path.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    with pytest.raises(CatalogError, match="base_url="):
        openapi_catalog(str(path))  # its server URL, /api/v1, is relative to nothing
    catalog = openapi_catalog(f"{path};base_url={api}/api/v1")
    assert {t.name for t in catalog} == NAMES
    assert catalog.source == f"openapi:{path};base_url={api}/api/v1"
    assert _run(catalog, "getPet", {"petId": 1})["name"] == "Rex"
    variables = {"v": {"default": "v1"}, "root": {"default": api}}
    absolute = dict(spec, servers=[{"url": "{root}/api/{v}", "variables": variables}])
    catalog = openapi_catalog(str(_write(tmp_path / "absolute.json", absolute)))
    assert _run(catalog, "getPet", {"petId": 3})["name"] == "Polly"


def test_load_catalog_reads_openapi_sources(api: str) -> None:
    catalog = load_catalog(f"openapi:{api}/openapi.json")
    assert {t.name for t in catalog} == NAMES
    assert catalog.source == f"openapi:{api}/openapi.json"


# -- bad sources ------------------------------------------------------------------------------


def test_swagger_2_and_other_documents_are_rejected(api: str, tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match=r"Swagger 2\.0 document; only OpenAPI 3\.x"):
        openapi_catalog(f"{api}/swagger.json")
    with pytest.raises(CatalogError, match="not an OpenAPI 3 document"):
        openapi_catalog(str(_write(tmp_path / "tools.json", {"tools": []})))
    with pytest.raises(CatalogError, match="not an OpenAPI document"):
        openapi_catalog(str(_write(tmp_path / "list.json", [1, 2])))
    (tmp_path / "bad.yaml").write_text("openapi: [unclosed", encoding="utf-8")
    with pytest.raises(CatalogError, match="neither as JSON nor as YAML"):
        openapi_catalog(str(tmp_path / "bad.yaml"))


def test_unknown_or_bad_options_are_rejected(api: str) -> None:
    url = f"{api}/openapi.json"
    with pytest.raises(CatalogError, match="unknown option 'bogus'") as bad:
        openapi_catalog(f"{url};bogus=1")
    assert all(k in str(bad.value) for k in ("base_url", "bearer_env", "api_key_env", "timeout"))
    with pytest.raises(CatalogError, match="timeout must be a number"):
        openapi_catalog(f"{url};timeout=soon")
    with pytest.raises(CatalogError, match="must name an environment variable"):
        openapi_catalog(f"{url};bearer_env=$TOKEN")
    with pytest.raises(CatalogError, match="base_url must be an http"):
        openapi_catalog(f"{url};base_url=ftp://example.com")


def test_api_key_env_needs_an_api_key_scheme(tmp_path: Path) -> None:
    doc = {"openapi": "3.0.0", "info": {"title": "Open", "version": "1"}, "paths": {}}
    path = _write(tmp_path / "open.json", doc)
    assert len(openapi_catalog(str(path))) == 0  # no operations: no base URL needed
    with pytest.raises(CatalogError, match="no apiKey security scheme"):
        openapi_catalog(f"{path};api_key_env=KEY")


def test_unreachable_or_missing_documents_are_catalog_errors(api: str, tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot fetch the OpenAPI document"):
        openapi_catalog(f"http://127.0.0.1:{_closed_port()}/openapi.json;timeout=2")
    with pytest.raises(CatalogError, match="HTTP 404"):
        openapi_catalog(f"{api}/nothing.json")
    with pytest.raises(CatalogError, match="not found"):
        openapi_catalog(str(tmp_path / "absent.yaml"))
