"""The build worker: runs queued Dockerfile builds with buildah and pushes them to this registry.

Each build gets its own temporary folder holding the source, a private buildah storage
(vfs driver, so no kernel overlay support is needed) and the credential files; the folder
is removed when the build ends, whatever the outcome. Builds are claimed from the database
queue, so any number of worker processes may run; each runs at most BUILD_MAX_CONCURRENT.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import tarfile
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from cargohold import outbound
from cargohold.db.models.accounts import RobotAccountToken
from cargohold.db.models.builds import UserFile
from cargohold.domain import build_tokens, queue, robots, triggers
from cargohold.domain import builds as build_rules
from cargohold.domain import notification_events as events
from cargohold.domain.service_keys import KeyRing
from cargohold.storage.base import StorageError
from cargohold.workers.runner import WorkerContext, register

log = logging.getLogger(__name__)

LEASE_SECONDS = 300
LEASE_RENEW_SECONDS = 60
RETRY_DELAY_SECONDS = 30
CANCEL_POLL_SECONDS = 1.0
EXPIRY_SWEEP_SECONDS = 30
MAX_ARCHIVE_BYTES = 4 * 1024**3
_STEP_LINE = re.compile(r"^(STEP|Step) \d+(/\d+)?\s?:")
_FROM_LINE = re.compile(r"^\s*FROM\s+(.*)$", re.IGNORECASE)
_CREDENTIALS_IN_URL = re.compile(r"(://)[^/@\s]+@")


class BuildFailed(Exception):
    """The build itself failed (bad input, failing step, push refused): phase `error`."""


class BuildStopped(Exception):
    """The build was cancelled, or the worker is shutting down."""


def executor_name(settings) -> str:
    if settings.BUILD_EXECUTOR == "auto":
        return "buildah" if shutil.which("buildah") else "none"
    return settings.BUILD_EXECUTOR


@dataclass
class _Slots:
    threads: list[threading.Thread] = field(default_factory=list)
    swept: float = 0.0

    def running(self) -> int:
        self.threads = [t for t in self.threads if t.is_alive()]
        return len(self.threads)


_SLOTS: dict[int, _Slots] = {}
_KEYRINGS: dict[int, KeyRing] = {}


def _keyring(context: WorkerContext) -> KeyRing:
    return _KEYRINGS.setdefault(id(context), KeyRing(context.settings, context.session_factory))


@register("builder")
def builder(context: WorkerContext) -> float:
    """Claim one queued build and start it in a thread when a slot is free."""
    if executor_name(context.settings) != "buildah":
        return 60.0
    slots = _SLOTS.setdefault(id(context), _Slots())
    if time.monotonic() - slots.swept > EXPIRY_SWEEP_SECONDS:
        slots.swept = time.monotonic()
        with context.session_factory() as session:
            build_rules.expire_lost_builds(session, context.settings)
    if slots.running() >= max(context.settings.BUILD_MAX_CONCURRENT, 1):
        return 1.0
    with context.session_factory() as session:
        claimed = queue.claim(session, build_rules.BUILD_QUEUE, LEASE_SECONDS)
    if claimed is None:
        return 1.0
    thread = threading.Thread(
        target=run_claimed_build, args=(context, claimed), name="build", daemon=True
    )
    thread.start()
    slots.threads.append(thread)
    return 0.05


def run_claimed_build(context: WorkerContext, claimed: queue.ClaimedItem) -> None:
    factory = context.session_factory
    with factory() as session:
        build = build_rules.find_build(session, claimed.body.get("build_uuid", ""))
        if build is None or build.phase in build_rules.TERMINAL_PHASES - {
            build_rules.INTERNAL_ERROR
        }:
            queue.complete(session, claimed)
            return
        job = BuildJob.load(context, session, build)
    job.execute(claimed)


@dataclass
class BuildJob:
    """Everything one build needs, read from the database before the slow work starts."""

    context: WorkerContext
    build_id: int
    build_uuid: str
    phase: str
    repository: str
    tags: list[str]
    dockerfile_path: str
    context_dir: str
    trigger_metadata: dict[str, Any]
    archive_url: str | None
    user_file_digest: str | None
    deploy_key: str | None
    pull_robot: tuple[str, str] | None
    on_behalf_of: str
    workdir: Path = Path()
    process: subprocess.Popen[str] | None = None
    stop_reason: str | None = None

    @classmethod
    def load(cls, context: WorkerContext, session, build) -> BuildJob:
        settings = context.settings
        config = build_rules.job_config(build)
        digest = None
        if build.resource_key:
            digest = session.scalar(
                select(UserFile.digest).where(UserFile.uuid == build.resource_key)
            )
        deploy_key = triggers.private_key(settings, build.trigger) if build.trigger else None
        pull_robot = None
        if build.pull_robot is not None:
            record = session.scalar(
                select(RobotAccountToken).where(RobotAccountToken.robot_id == build.pull_robot.id)
            )
            secret = robots.read_token(settings, record) if record is not None else None
            if secret is not None:
                pull_robot = (build.pull_robot.username, secret)
        return cls(
            context=context,
            build_id=build.id,
            build_uuid=build.uuid,
            phase=build.phase,
            repository=build.repository.full_name,
            tags=config.get("docker_tags") or ["latest"],
            dockerfile_path=config.get("build_subdir") or "/Dockerfile",
            context_dir=config.get("context") or "/",
            trigger_metadata=config.get("trigger_metadata") or {},
            archive_url=config.get("archive_url"),
            user_file_digest=digest,
            deploy_key=deploy_key,
            pull_robot=pull_robot,
            on_behalf_of=_performer(build, config),
        )

    # --- the build, phase by phase --------------------------------------------------------

    def execute(self, claimed: queue.ClaimedItem) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="cargohold-build-"))
        renewer = threading.Thread(target=self._renew_lease, args=(claimed,), daemon=True)
        done = threading.Event()
        self._done = done
        renewer.start()
        outcome = "internal"
        try:
            if self.phase == build_rules.INTERNAL_ERROR:
                self._requeued()
            else:
                self._phase(build_rules.BUILD_SCHEDULED)
            self._run()
            outcome = "complete"
        except BuildFailed as exc:
            outcome = "error"
            self._fail(str(exc))
        except BuildStopped:
            outcome = "stopped"
        except Exception:
            log.exception("build %s failed unexpectedly", self.build_uuid)
            outcome = "internal"
        finally:
            done.set()
            self._cleanup()
        self._finish(claimed, outcome)

    def _run(self) -> None:
        settings = self.context.settings
        self._phase(build_rules.UNPACKING)
        source = self.workdir / "source"
        source.mkdir()
        deadline = time.monotonic() + settings.BUILD_FETCH_TIMEOUT
        if self.trigger_metadata.get("git_url"):
            self._checkout(source, deadline)
        else:
            self._unpack(source, deadline)
        dockerfile, build_context = self._locate(source)
        deadline = time.monotonic() + settings.BUILD_TIMEOUT
        self._write_registry_config()
        bases = base_images(dockerfile.read_text(errors="replace"))
        self._phase(build_rules.PULLING, self._pull_metadata(bases))
        for image in bases:
            self._buildah(["pull", "--authfile", str(self._pull_auth()), image], deadline)
        self._phase(build_rules.BUILDING)
        local_name = f"localhost/cargohold-build-{self.build_uuid}"
        self._buildah(
            [
                "bud",
                "--isolation",
                "chroot",
                "--authfile",
                str(self._pull_auth()),
                "-f",
                str(dockerfile),
                "-t",
                local_name,
                str(build_context),
            ],
            deadline,
        )
        self._phase(build_rules.PUSHING)
        self._push(local_name, deadline)
        self._phase(build_rules.COMPLETE)

    def _phase(self, phase: str, data: dict[str, Any] | None = None) -> None:
        with self.context.session_factory() as session:
            if not build_rules.set_phase(
                session, self.build_id, phase, data, settings=self.context.settings
            ):
                raise BuildStopped(phase)

    def _requeued(self) -> None:
        with self.context.session_factory() as session:
            if not build_rules.requeue_phase(session, self.build_id):
                raise BuildStopped(build_rules.BUILD_SCHEDULED)

    def _fail(self, message: str) -> None:
        with self.context.session_factory() as session:
            build_rules.append_log(session, self.build_id, message, "error")
            session.commit()
            build_rules.set_phase(
                session, self.build_id, build_rules.ERROR, settings=self.context.settings
            )

    def _finish(self, claimed: queue.ClaimedItem, outcome: str) -> None:
        factory = self.context.session_factory
        with factory() as session:
            if outcome == "stopped" and self.stop_reason == "shutdown":
                queue.retry_later(session, claimed, 0)
                return
            if outcome == "internal":
                if build_rules.set_phase(session, self.build_id, build_rules.INTERNAL_ERROR):
                    build_rules.append_log(
                        session, self.build_id, "An internal error occurred", "error"
                    )
                    session.commit()
                if claimed.retries_remaining > 0:
                    queue.retry_later(session, claimed, RETRY_DELAY_SECONDS)
                else:
                    build_rules.notify_build(
                        session, self.context.settings, self.build_id, events.BUILD_FAILURE
                    )
                    queue.complete(session, claimed)
            else:
                queue.complete(session, claimed)
            build_rules.record_trigger_outcome(session, self.context.settings, self.build_id)

    def _renew_lease(self, claimed: queue.ClaimedItem) -> None:
        while not self._done.wait(LEASE_RENEW_SECONDS):
            with self.context.session_factory() as session:
                queue.extend(session, claimed, LEASE_SECONDS)

    def _cleanup(self) -> None:
        root = self.workdir / "storage"
        if root.exists() and shutil.which("buildah"):
            subprocess.run(
                [*self._buildah_base(), "rm", "--all"],
                capture_output=True,
                timeout=120,
                check=False,
            )
        shutil.rmtree(self.workdir, ignore_errors=True)

    # --- getting the source ---------------------------------------------------------------

    def _git_env(self) -> dict[str, str]:
        home = self.workdir / "home"
        home.mkdir(exist_ok=True)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ALLOW_PROTOCOL": "git:http:https:ssh",
            "GIT_CONFIG_NOSYSTEM": "1",
        }
        ssh = (
            "ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new"
            f" -o UserKnownHostsFile={home / 'known_hosts'}"
        )
        if self.deploy_key:
            key_path = home / "deploy_key"
            key_path.write_text(self.deploy_key)
            key_path.chmod(0o600)
            ssh += f" -o IdentitiesOnly=yes -i {key_path}"
        env["GIT_SSH_COMMAND"] = ssh
        return env

    def _check_source(self, url: str) -> None:
        """git resolves the name itself, so the guard looks right before each fetch."""
        try:
            outbound.check_git_source(self.context.settings, url)
        except outbound.OutboundRefused as exc:
            raise BuildFailed(f"Could not fetch the git repository: {exc}") from exc

    def _git(self, args: list[str], env: dict[str, str], deadline: float) -> None:
        try:
            result = subprocess.run(
                ["git", "-c", "http.followRedirects=false", *args],
                env=env,
                capture_output=True,
                text=True,
                timeout=max(deadline - time.monotonic(), 1),
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise BuildFailed("Timed out fetching the git repository") from exc
        if result.returncode != 0:
            lines = [line for line in result.stderr.splitlines() if line.strip()]
            detail = redact(lines[-1] if lines else "git failed")
            raise BuildFailed(detail)

    def _checkout(self, source: Path, deadline: float) -> None:
        url = self.trigger_metadata["git_url"]
        commit = self.trigger_metadata.get("commit", "")
        self._check_source(url)
        env = self._git_env()
        self._git(["clone", "--quiet", "--no-checkout", "--", url, str(source)], env, deadline)
        ref = self.trigger_metadata.get("ref")
        resolved = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if resolved.returncode != 0 and ref:
            self._check_source(url)
            self._git(["-C", str(source), "fetch", "--quiet", "origin", ref], env, deadline)
            resolved = subprocess.run(
                [
                    "git",
                    "-C",
                    str(source),
                    "rev-parse",
                    "--verify",
                    "--quiet",
                    f"{commit}^{{commit}}",
                ],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
        if resolved.returncode != 0:
            raise BuildFailed(f"Could not find commit {commit} in {redact(url)}")
        self._git(
            ["-C", str(source), "checkout", "--quiet", "--detach", resolved.stdout.strip()],
            env,
            deadline,
        )

    def _unpack(self, source: Path, deadline: float) -> None:
        archive = self.workdir / "archive"
        if self.user_file_digest:
            try:
                with archive.open("wb") as handle:
                    for chunk in self.context.store.read_blob(self.user_file_digest):
                        handle.write(chunk)
            except StorageError as exc:
                raise BuildFailed("The uploaded build file could not be read") from exc
        elif self.archive_url:
            self._download(self.archive_url, archive, deadline)
        else:
            raise BuildFailed("The build has no source")
        extract(archive, source)

    def _download(self, url: str, target: Path, deadline: float) -> None:
        timeout = max(deadline - time.monotonic(), 1)
        written = 0
        try:
            with (
                outbound.guarded_client(self.context.settings, timeout=timeout) as client,
                client.stream("GET", url, follow_redirects=True) as response,
                target.open("wb") as handle,
            ):
                if response.status_code != 200:
                    raise BuildFailed(
                        f"Could not download the build archive: HTTP {response.status_code}"
                    )
                for chunk in response.iter_bytes():
                    written += len(chunk)
                    if written > MAX_ARCHIVE_BYTES or time.monotonic() > deadline:
                        raise BuildFailed("The build archive is too large or too slow to download")
                    handle.write(chunk)
        except outbound.OutboundRefused as exc:
            raise BuildFailed(f"Could not download the build archive: {exc}") from exc
        except httpx.HTTPError as exc:
            # The transport's own words would tell a refused port from a silent one.
            raise BuildFailed("Could not download the build archive") from exc

    def _locate(self, source: Path) -> tuple[Path, Path]:
        root = source.resolve()
        build_context = (root / self.context_dir.lstrip("/")).resolve()
        dockerfile = (root / self.dockerfile_path.lstrip("/")).resolve()
        for path in (build_context, dockerfile):
            if path != root and root not in path.parents:
                raise BuildFailed("The Dockerfile path and context must stay inside the source")
        if not build_context.is_dir():
            raise BuildFailed(f"Build context {self.context_dir} is not a directory")
        if not dockerfile.is_file():
            raise BuildFailed(f"Could not find Dockerfile at {self.dockerfile_path}")
        return dockerfile, build_context

    # --- buildah and skopeo ---------------------------------------------------------------

    def _buildah_base(self) -> list[str]:
        return [
            "buildah",
            "--root",
            str(self.workdir / "storage"),
            "--runroot",
            str(self.workdir / "run"),
            "--storage-driver",
            "vfs",
        ]

    def _registry_host(self) -> str:
        return self.context.settings.SERVER_HOSTNAME

    def _insecure(self) -> bool:
        return self.context.settings.PREFERRED_URL_SCHEME != "https"

    def _write_registry_config(self) -> None:
        lines = ['unqualified-search-registries = ["docker.io"]', ""]
        if self._insecure():
            lines += ["[[registry]]", f'location = "{self._registry_host()}"', "insecure = true"]
        (self.workdir / "registries.conf").write_text("\n".join(lines) + "\n")

    def _pull_auth(self) -> Path:
        path = self.workdir / "pull-auth.json"
        if not path.exists():
            auths: dict[str, Any] = {}
            if self.pull_robot is not None:
                import base64

                pair = f"{self.pull_robot[0]}:{self.pull_robot[1]}".encode()
                auths[self._registry_host()] = {"auth": base64.b64encode(pair).decode()}
            path.write_text(json.dumps({"auths": auths}))
            path.chmod(0o600)
        return path

    def _pull_metadata(self, bases: list[str]) -> dict[str, Any]:
        if not bases:
            return {}
        image = bases[0]
        registry, _, rest = image.partition("/")
        if not rest or ("." not in registry and ":" not in registry and registry != "localhost"):
            registry, rest = "docker.io", image
        name, _, tag = rest.rpartition(":") if ":" in rest.split("/")[-1] else (rest, "", "latest")
        data: dict[str, Any] = {
            "registry_url": registry,
            "base_image": name,
            "base_image_tag": tag,
        }
        if self.pull_robot is not None and registry == self._registry_host():
            data["pull_username"] = self.pull_robot[0]
        return data

    def _env(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.workdir / "home"),
            "TMPDIR": str(self._tmp()),
            "CONTAINERS_REGISTRIES_CONF": str(self.workdir / "registries.conf"),
            "BUILDAH_ISOLATION": "chroot",
        }

    def _tmp(self) -> Path:
        path = self.workdir / "tmp"
        path.mkdir(exist_ok=True)
        (self.workdir / "home").mkdir(exist_ok=True)
        return path

    def _buildah(self, args: list[str], deadline: float) -> None:
        self._stream([*self._buildah_base(), *args], deadline)

    def _push(self, local_name: str, deadline: float) -> None:
        token = build_tokens.push_token(
            self.context.settings, _keyring(self.context), self.repository, self.on_behalf_of
        )
        source = (
            f"containers-storage:[vfs@{self.workdir / 'storage'}+{self.workdir / 'run'}]"
            f"{local_name}:latest"
        )
        for tag in self.tags:
            destination = f"docker://{self._registry_host()}/{self.repository}:{tag}"
            self._stream(
                [
                    "skopeo",
                    "copy",
                    "--dest-registry-token",
                    token,
                    f"--dest-tls-verify={'false' if self._insecure() else 'true'}",
                    source,
                    destination,
                ],
                deadline,
                shown=["skopeo", "copy", source, destination],
            )

    def _stream(self, command: list[str], deadline: float, shown: list[str] | None = None) -> None:
        """Run a command, logging each output line as it comes; stop on cancel or timeout."""
        if self.context.stopping.is_set():
            self.stop_reason = "shutdown"
            raise BuildStopped("shutdown")
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self._env(),
            cwd=self.workdir,
            text=True,
            errors="replace",
            bufsize=1,
            start_new_session=True,
        )
        self.process = process
        watcher = threading.Thread(target=self._watch, args=(process, deadline), daemon=True)
        watcher.start()
        last_error = ""
        with self.context.session_factory() as session:
            for raw in process.stdout:
                line = raw.rstrip("\n")
                if not line.strip():
                    continue
                if line.lower().startswith("error"):
                    last_error = line
                entry_type = "command" if _STEP_LINE.match(line) else None
                build_rules.append_log(session, self.build_id, line, entry_type)
                session.commit()
        process.wait()
        watcher.join()
        self.process = None
        if self.stop_reason == "timeout":
            raise BuildFailed(
                f"The build took longer than {self.context.settings.BUILD_TIMEOUT} seconds"
            )
        if self.stop_reason is not None:
            raise BuildStopped(self.stop_reason)
        if process.returncode != 0:
            name = " ".join((shown or command)[:2]) if command[0] == "skopeo" else "buildah"
            raise BuildFailed(last_error or f"{name} exited with status {process.returncode}")

    def _watch(self, process: subprocess.Popen[str], deadline: float) -> None:
        """Kill the process group when the build is cancelled, times out or the worker stops."""
        while process.poll() is None:
            reason = None
            if self.context.stopping.is_set():
                reason = "shutdown"
            elif time.monotonic() > deadline:
                reason = "timeout"
            else:
                with self.context.session_factory() as session:
                    if build_rules.current_phase(session, self.build_id) == build_rules.CANCELLED:
                        reason = "cancelled"
            if reason is not None:
                self.stop_reason = reason
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                return
            time.sleep(CANCEL_POLL_SECONDS)


def _performer(build, config: dict[str, Any]) -> str:
    """Who a build pushes for: its requester, else its trigger's owner, else the namespace."""
    if config.get("manual_user"):
        return config["manual_user"]
    if build.trigger is not None and build.trigger.connected_user is not None:
        return build.trigger.connected_user.username
    return build.repository.namespace_user.username


def redact(text: str) -> str:
    """Drop user:password from URLs before text reaches the build log."""
    return _CREDENTIALS_IN_URL.sub(r"\1", text)


def base_images(dockerfile: str) -> list[str]:
    """The images a Dockerfile builds FROM, leaving out scratch, earlier stages and ARG-based names."""
    stages: set[str] = set()
    images: list[str] = []
    for line in dockerfile.splitlines():
        match = _FROM_LINE.match(line)
        if not match:
            continue
        words = [w for w in match.group(1).split() if not w.startswith("--")]
        if not words:
            continue
        image = words[0]
        if len(words) >= 3 and words[1].lower() == "as":
            stages.add(words[2].lower())
        if image.lower() == "scratch" or image.lower() in stages or "$" in image:
            continue
        if image not in images:
            images.append(image)
    return images


def _looks_like_dockerfile(data: bytes) -> bool:
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return False
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        return stripped.split()[0].upper() in ("FROM", "ARG")
    return False


def extract(archive: Path, target: Path) -> None:
    """Unpack a tar (any compression) or zip archive, or take the file as a lone Dockerfile."""
    if tarfile.is_tarfile(archive):
        try:
            with tarfile.open(archive) as bundle:
                bundle.extractall(target, filter="data")
        except (tarfile.TarError, OSError) as exc:
            raise BuildFailed(f"Could not unpack the build archive: {exc}") from exc
        return
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as bundle:
            root = target.resolve()
            for member in bundle.namelist():
                path = (target / member).resolve()
                if root not in path.parents and path != root:
                    raise BuildFailed("The build archive has paths outside its root")
            bundle.extractall(target)
        return
    with archive.open("rb") as handle:
        head = handle.read(1024 * 1024)
    if _looks_like_dockerfile(head):
        shutil.copyfile(archive, target / "Dockerfile")
        return
    raise BuildFailed("The build file is not a tar or zip archive, nor a Dockerfile")
