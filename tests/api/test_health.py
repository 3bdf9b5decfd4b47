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
