"""Metadata API: SDK get_metadata()/set_metadata() (gRPC) and HTTP GET/PUT /v1.0/metadata."""

import pytest

from _compat import COMMON_CAPABILITIES, STORE_TYPES, STORES


def _components_by_name(md):
    return {c.name: c for c in md.registered_components}


def test_application_id(client, main_sidecar):
    assert client.get_metadata().application_id == main_sidecar.app_id


def test_registered_components_lists_the_four_stores(client):
    comps = _components_by_name(client.get_metadata())

    missing = set(STORES) - set(comps)
    assert not missing, f"components not reported: {missing}; got {sorted(comps)}"


@pytest.mark.parametrize("name", STORES)
def test_registered_state_store_details(client, name):
    comp = _components_by_name(client.get_metadata())[name]

    assert comp.type == STORE_TYPES[name]
    assert comp.type.startswith("state.")
    assert comp.version == "v1"
    caps = set(comp.capabilities)
    assert COMMON_CAPABILITIES <= caps, f"{name}: missing {COMMON_CAPABILITIES - caps}, got {sorted(caps)}"


def test_postgres_reports_query_capability(client):
    comp = _components_by_name(client.get_metadata())["pg-store"]
    assert "QUERY_API" in comp.capabilities


@pytest.mark.parametrize("name", ["sqlite-store", "redis-store"])
def test_stores_without_query_support_do_not_report_query_capability(client, name):
    # Upstream: sqlite never implements queries; redis only with the RedisJSON/RediSearch
    # modules, which a plain Redis server does not have.
    comp = _components_by_name(client.get_metadata())[name]
    assert "QUERY_API" not in comp.capabilities


def test_capabilities_are_not_duplicated(client):
    for comp in client.get_metadata().registered_components:
        caps = list(comp.capabilities)
        assert len(caps) == len(set(caps)), f"{comp.name}: {caps}"


def test_set_metadata_then_get(client, kp):
    attr = f"attr-{kp}"

    client.set_metadata(attr, "value-1")
    assert client.get_metadata().extended_metadata.get(attr) == "value-1"

    client.set_metadata(attr, "value-2")
    assert client.get_metadata().extended_metadata.get(attr) == "value-2", "set_metadata must overwrite"


def test_extended_metadata_reports_runtime_version(client):
    # Upstream always adds daprRuntimeVersion to the extended metadata.
    assert client.get_metadata().extended_metadata.get("daprRuntimeVersion")


def test_no_actors_reported(client):
    assert dict(client.get_metadata().active_actors_count) == {}


# ---- HTTP -----------------------------------------------------------------------------------


def test_http_metadata_document(http, main_sidecar):
    r = http.get("/v1.0/metadata")

    assert r.status_code == 200, r.text
    assert r.headers.get("Content-Type", "").startswith("application/json")
    doc = r.json()
    assert doc["id"] == main_sidecar.app_id
    assert isinstance(doc["runtimeVersion"], str) and doc["runtimeVersion"]
    comps = {c["name"]: c for c in doc["components"]}
    for name in STORES:
        assert name in comps, f"{name} missing from HTTP metadata components"
        assert comps[name]["type"] == STORE_TYPES[name]
        assert comps[name]["version"] == "v1"
        assert COMMON_CAPABILITIES <= set(comps[name].get("capabilities", []))


def test_http_and_grpc_metadata_agree(http, client):
    doc = http.get("/v1.0/metadata").json()
    md = client.get_metadata()

    assert doc["id"] == md.application_id
    http_comps = {(c["name"], c["type"], c["version"]) for c in doc["components"]}
    grpc_comps = {(c.name, c.type, c.version) for c in md.registered_components}
    assert http_comps == grpc_comps
    assert doc.get("extended", {}) == md.extended_metadata


def test_grpc_set_metadata_visible_over_http(client, http, kp):
    attr = f"grpc-attr-{kp}"
    client.set_metadata(attr, "from-grpc")

    assert http.get("/v1.0/metadata").json()["extended"][attr] == "from-grpc"


def test_http_put_metadata_visible_over_grpc(client, http, kp):
    attr = f"http-attr-{kp}"

    r = http.put(f"/v1.0/metadata/{attr}", data=b"from-http")

    assert r.status_code == 204, r.text
    assert client.get_metadata().extended_metadata.get(attr) == "from-http"
