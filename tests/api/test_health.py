import httpx

from tests.support.server import LiveServer


def test_health_endpoints_check_database_and_storage(server: LiveServer, anon_client) -> None:
    instance = anon_client.get("/health/instance")
    assert instance.status_code == 200
    assert instance.json()["data"]["services"]["database"] is True
    end_to_end = anon_client.get("/health/endtoend")
    assert end_to_end.status_code == 200
    assert end_to_end.json()["data"]["services"] == {"database": True, "storage": True}


def test_end_to_end_health_fails_when_storage_is_unusable(server_factory, tmp_path) -> None:
    storage = tmp_path / "storage"
    live = server_factory(
        {
            "DISTRIBUTED_STORAGE_CONFIG": {
                "local": ["LocalStorage", {"storage_path": str(storage)}]
            },
            "DISTRIBUTED_STORAGE_PREFERENCE": ["local"],
        }
    )
    moved = storage.with_name("storage.moved")
    storage.rename(moved)
    storage.write_text("not a folder")
    try:
        response = httpx.get(live.url + "/health/endtoend")
    finally:
        storage.unlink()
        moved.rename(storage)
    assert response.status_code == 503
    assert response.json()["data"]["services"] == {"database": True, "storage": False}


def test_quay_health_aliases_answer_like_their_targets(server: LiveServer, anon_client) -> None:
    ping = anon_client.get("/_internal_ping")
    assert (ping.status_code, ping.text) == (200, "true")
    health = anon_client.get("/health")
    assert health.status_code == 200
    assert health.json() == anon_client.get("/health/instance").json()
    status = anon_client.get("/status")
    assert status.status_code == 200
    assert status.json() == {
        "data": {"services": {"database": True, "storage": True}},
        "status_code": 200,
    }


def test_health_warning_reports_disk_space(server: LiveServer, anon_client, server_factory) -> None:
    healthy = anon_client.get("/health/warning")
    assert healthy.status_code == 200
    assert healthy.json() == {
        "data": {"services": {"disk_space_warning": True}},
        "status_code": 200,
    }
    # No disk is ever more than 100% free: the warning fires.
    strict = server_factory({"DISKSPACE_HEALTH_WARNING_THRESHOLD": 1.01})
    warned = httpx.get(strict.url + "/health/warning")
    assert warned.status_code == 503
    assert warned.json() == {
        "data": {"services": {"disk_space_warning": False}},
        "status_code": 503,
    }
    assert httpx.get(strict.url + "/health").status_code == 200
