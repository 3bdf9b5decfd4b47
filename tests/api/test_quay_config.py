"""cargohold starts with the config.yaml Quay itself ran with: nulls, unknown keys and all."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from cargohold.config import ConfigError, Settings, load_settings
from tests.mirror.conftest import mirror_setup
from tests.support.canary import canary_server

QUAY_CONFIG = Path(__file__).resolve().parents[1] / "support" / "quay_config.yaml"
# Keys the test server sets itself: its address, database and storage.
SERVER_OWN_KEYS = (
    "SERVER_HOSTNAME",
    "DB_URI",
    "DISTRIBUTED_STORAGE_CONFIG",
    "DISTRIBUTED_STORAGE_PREFERENCE",
)


def _quay_config() -> dict[str, Any]:
    config = yaml.safe_load(QUAY_CONFIG.read_text())
    for key in SERVER_OWN_KEYS:
        config.pop(key)
    return config


def test_every_key_set_to_null_takes_its_default(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "data")
    nulls = {key: None for key in Settings.model_fields}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({**nulls, "DATA_DIR": data_dir}))

    loaded = load_settings(tmp_path, environ={})
    defaults = load_settings(tmp_path / "no-config", environ={"CARGOHOLD_DATA_DIR": data_dir})

    assert loaded.model_dump() == defaults.model_dump()
    assert loaded.MAIL_USERNAME == "" and loaded.MAIL_PASSWORD == ""
    assert loaded.TAG_EXPIRATION_OPTIONS == ["0s", "1d", "1w", "2w", "4w"]


def test_a_null_from_the_environment_takes_the_default(tmp_path: Path) -> None:
    settings = load_settings(
        tmp_path,
        environ={"CARGOHOLD_MAIL_PORT": "null", "CARGOHOLD_DATA_DIR": str(tmp_path / "d")},
    )
    assert settings.MAIL_PORT == 587


def test_a_bad_value_still_stops_start_up(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"MAIL_PORT": "many"}))
    with pytest.raises(ConfigError, match="^config key MAIL_PORT:"):
        load_settings(tmp_path, environ={})


def test_server_runs_on_quay_config_file(server_factory) -> None:
    live = server_factory(_quay_config())

    settings = live.settings
    assert settings.MAIL_USERNAME == "" and settings.MAIL_SERVER == ""
    assert settings.SESSION_COOKIE_NAME == "_csrf_token"
    assert settings.REGISTRY_TITLE == "Red Hat Quay"
    log = live.log_text()
    assert "config key TESTING is not used by cargohold and is ignored" in log
    assert "config key BUILDLOGS_REDIS is not used by cargohold and is ignored" in log

    token = httpx.get(live.url + "/csrf_token")
    assert token.status_code == 200
    assert "_csrf_token" in token.cookies

    # SSRF_ALLOWED_HOSTS lists 127.0.0.0/8: a mirror of a registry on loopback is allowed.
    setup = mirror_setup(live)
    with canary_server() as canary:
        body = {
            "external_reference": f"127.0.0.1:{canary.port}/library/app",
            "sync_interval": 3600,
            "sync_start_date": "2030-01-01T00:00:00Z",
            "root_rule": {"rule_kind": "tag_glob_csv", "rule_value": ["*"]},
            "robot_username": setup.robot,
        }
        created = setup.client.post(setup.url, json=body)
        assert created.status_code == 201, created.text
        shown = setup.client.get(setup.url).json()
        assert shown["external_reference"] == body["external_reference"]
        assert shown["skopeo_timeout_interval"] == 300
