"""The build worker: runs queued Dockerfile builds with buildah and pushes them to this registry.

Each build gets its own temporary folder holding the source, a private buildah storage
(vfs driver, so no kernel overlay support is needed) owned by the build user, and the
credential files, readable by root only; the folder is removed when the build ends, whatever
the outcome. Every build runs in the sandbox described in `adapters.sandbox`; when the host
cannot provide it, builds wait. Builds are claimed from the database queue, so any number of
worker processes may run; each runs at most BUILD_MAX_CONCURRENT.
"""

from __future__ import annotations

import contextlib
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

from cargohold import metrics
from cargohold.adapters import buildah, git, outbound, sandbox, skopeo
from cargohold.adapters.process import dies_with_worker
from cargohold.domain import build_jobs, build_tokens, queue
from cargohold.domain import builds as build_rules
from cargohold.domain import notification_events as events
from cargohold.domain.service_keys import KeyRing
from cargohold.storage.base import StorageError
from cargohold.workers.runner import WorkerContext, register

log = logging.getLogger(__name__)

RETRY_DELAY_SECONDS = 30
CANCEL_POLL_SECONDS = 1.0
EXPIRY_SWEEP_SECONDS = 30
STORAGE_CHECK_SECONDS = 2.0
REFUSED_RETRY_SECONDS = 10.0
SANDBOX_DNS = "10.0.2.3"
MAX_ARCHIVE_BYTES = 4 * 1024**3
_STEP_LINE = re.compile(r"^(STEP|Step) \d+(/\d+)?\s?:")
_FROM_LINE = re.compile(r"^\s*FROM\s+(.*)$", re.IGNORECASE)


class BuildFailed(Exception):
    """The build itself failed (bad input, failing step, push refused): phase `error`."""


class BuildStopped(Exception):
    """The build was cancelled, or the worker is shutting down."""


def executor_name(settings) -> str:
    if settings.BUILD_EXECUTOR == "auto":
        return "buildah" if buildah.available() else "none"
    return settings.BUILD_EXECUTOR


@dataclass
class _Slots:
    threads: list[threading.Thread] = field(default_factory=list)
    swept: float = 0.0
    filter_error: str | None = None
    filter_installed: bool = False
    announced: str | None = None

    def running(self) -> int:
        self.threads = [t for t in self.threads if t.is_alive()]
        return len(self.threads)


_SLOTS: dict[int, _Slots] = {}
_KEYRINGS: dict[int, KeyRing] = {}


def _keyring(context: WorkerContext) -> KeyRing:
    return _KEYRINGS.setdefault(id(context), KeyRing(context.settings, context.session_factory))


@register(
    "builder",
    "runs queued image builds with buildah in the build sandbox",
)
def builder(context: WorkerContext) -> float:
    """Claim one queued build and start it in a thread when a slot is free."""
    if executor_name(context.settings) != "buildah":
        return 60.0
    slots = _SLOTS.setdefault(id(context), _Slots())
    refusal = _sandbox_refusal(context, slots)
    if refusal is not None:
        with context.session_factory() as session:
            build_rules.note_waiting_builds(session, refusal)
        return REFUSED_RETRY_SECONDS
    if time.monotonic() - slots.swept > EXPIRY_SWEEP_SECONDS:
        slots.swept = time.monotonic()
        with context.session_factory() as session:
            build_rules.expire_lost_builds(session, context.settings)
    if slots.running() >= max(context.settings.BUILD_MAX_CONCURRENT, 1):
        return 1.0
    with context.session_factory() as session:
        claimed = queue.claim(
            session, build_rules.BUILD_QUEUE, context.settings.WORKER_HEARTBEAT_TIMEOUT
        )
    if claimed is None:
        return 1.0
    thread = threading.Thread(
        target=run_claimed_build, args=(context, claimed), name="build", daemon=True
    )
    thread.start()
    slots.threads.append(thread)
    return 0.05


def _sandbox_refusal(context: WorkerContext, slots: _Slots) -> str | None:
    """Why builds must wait on this host (logged when it changes), or None to run them."""
    settings = context.settings
    reason = sandbox.unavailable_reason(settings)
    if reason is None and settings.BUILD_NETWORK == "isolated":
        # Installed once here to learn whether nftables works at all; every build installs
        # it again, so a periodic reinstall here would only fight other servers on the host.
        if not slots.filter_installed or slots.filter_error is not None:
            account = sandbox.build_account(settings)
            assert account is not None
            slots.filter_error = sandbox.install_network_filter(settings, account)
            slots.filter_installed = True
        reason = slots.filter_error
    message = None if reason is None else f"Builds cannot start on this server: {reason}"
    if message != slots.announced:
        if message is not None:
            log.warning("%s; builds stay waiting until this is fixed", message)
        else:
            log.info("build sandbox ready")
        slots.announced = message
    return message


def run_claimed_build(context: WorkerContext, claimed: queue.ClaimedItem) -> None:
    with context.session_factory() as session:
        spec = build_jobs.claimed_build(session, context.settings, claimed)
    if spec is not None:
        BuildJob.load(context, spec).execute(claimed)


@dataclass
class BuildJob(build_jobs.BuildSpec):
    """One build as it runs: what the database said (`BuildSpec`) and the host's part."""

    context: WorkerContext
    account: sandbox.BuildAccount
    limits: sandbox.Limits
    workdir: Path = Path()
    process: subprocess.Popen[str] | None = None
    stop_reason: str | None = None
    cgroup: sandbox.BuildCgroup | None = None

    @classmethod
    def load(cls, context: WorkerContext, spec: build_jobs.BuildSpec) -> BuildJob:
        settings = context.settings
        account = sandbox.build_account(settings)
        if account is None:
            raise RuntimeError(f"build user {settings.BUILD_USER} vanished")
        return cls(
            context=context,
            account=account,
            limits=sandbox.Limits.from_settings(settings),
            **vars(spec),
        )

    # --- the build, phase by phase --------------------------------------------------------

    def execute(self, claimed: queue.ClaimedItem) -> None:
        self.workdir = Path(
            tempfile.mkdtemp(prefix="cargohold-build-", dir=sandbox.work_dir(self.context.settings))
        )
        self._prepare_workdir()
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
        metrics.BUILD_OUTCOMES.labels(outcome).inc()

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
        _chown_tree(source, self.account)
        deadline = time.monotonic() + settings.BUILD_TIMEOUT
        self._write_registry_config()
        bases = base_images(dockerfile.read_text(errors="replace"))
        self._phase(build_rules.PULLING, self._pull_metadata(bases))
        for index, image in enumerate(bases):
            self._pull_base(image, index, deadline)
        self._phase(build_rules.BUILDING)
        local_name = f"localhost/cargohold-build-{self.build_uuid}"
        self._build(dockerfile, build_context, local_name, deadline)
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
        lease = self.context.settings.WORKER_HEARTBEAT_TIMEOUT
        while not self._done.wait(lease / 3):
            with self.context.session_factory() as session:
                queue.extend(session, claimed, lease)

    def _prepare_workdir(self) -> None:
        """Root keeps the folder and its credentials; the build user owns only `sandbox/`.
        What root writes for the build user (base images, registries.conf) stays in root's
        folders, so no link the build user plants can redirect a write of root's."""
        self.workdir.chmod(0o711)
        (self.workdir / "private").mkdir(mode=0o700)
        (self.workdir / "home").mkdir(mode=0o700)
        (self.workdir / "bases").mkdir()
        (self.workdir / "bases").chmod(0o711)  # mkdir's mode is masked by the umask
        box = self._sandbox_dir()
        box.mkdir(mode=0o700)
        for name in ("run", "tmp"):
            (box / name).mkdir(mode=0o700)
        _chown_tree(box, self.account)

    def _cleanup(self) -> None:
        """The build's storage, source and credentials go, whatever the outcome."""
        if self.cgroup is not None:
            self.cgroup.remove()
            self.cgroup = None
        shutil.rmtree(self.workdir, ignore_errors=True)

    # --- getting the source ---------------------------------------------------------------

    def _check_source(self, url: str) -> None:
        """git resolves the name itself, so the guard looks right before each fetch."""
        try:
            outbound.check_git_source(self.context.settings, url)
        except outbound.OutboundRefused as exc:
            raise BuildFailed(f"Could not fetch the git repository: {exc}") from exc

    def _checkout(self, source: Path, deadline: float) -> None:
        try:
            git.checkout(
                self.trigger_metadata["git_url"],
                self.trigger_metadata.get("commit", ""),
                self.trigger_metadata.get("ref"),
                source,
                env=git.environment(self.workdir / "home", self.deploy_key),
                deadline=deadline,
                before_fetch=self._check_source,
            )
        except git.GitFailed as exc:
            raise BuildFailed(str(exc)) from exc

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
        settings = self.context.settings
        try:
            outbound.download(settings, url, target, deadline=deadline, max_bytes=MAX_ARCHIVE_BYTES)
        except outbound.OutboundRefused as exc:
            raise BuildFailed(f"Could not download the build archive: {exc}") from exc
        except outbound.DownloadTooLarge as exc:
            raise BuildFailed("The build archive is too large or too slow to download") from exc
        except outbound.DownloadFailed as exc:
            detail = f": {exc}" if str(exc) else ""
            raise BuildFailed(f"Could not download the build archive{detail}") from exc

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

    def _sandbox_dir(self) -> Path:
        return self.workdir / "sandbox"

    def _buildah_base(self) -> list[str]:
        return buildah.storage_command(self._sandbox_dir())

    def _registry_host(self) -> str:
        return self.context.settings.SERVER_HOSTNAME

    def _insecure(self) -> bool:
        return self.context.settings.PREFERRED_URL_SCHEME != "https"

    def _write_registry_config(self) -> None:
        lines = ['unqualified-search-registries = ["docker.io"]', ""]
        if self._insecure():
            lines += ["[[registry]]", f'location = "{self._registry_host()}"', "insecure = true"]
        (self.workdir / "private" / "registries.conf").write_text("\n".join(lines) + "\n")
        build_conf = self.workdir / "registries.conf"
        build_conf.write_text('unqualified-search-registries = ["docker.io"]\n')
        build_conf.chmod(0o644)

    def _pull_auth(self) -> str:
        path = self.workdir / "private" / "pull-auth.json"
        if path.exists():
            return str(path)
        return skopeo.write_authfile(path.parent, path.name, self._registry_host(), self.pull_robot)

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
        """The worker's own environment for skopeo, which runs as root outside the sandbox."""
        home = self.workdir / "private"
        (home / "tmp").mkdir(exist_ok=True)
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "TMPDIR": str(home / "tmp"),
            "CONTAINERS_REGISTRIES_CONF": str(home / "registries.conf"),
        }

    def _build_env(self) -> dict[str, str]:
        """The build user's environment: its own folder, nothing of the server's."""
        return sandbox.account_env(
            self._sandbox_dir(),
            {"CONTAINERS_REGISTRIES_CONF": str(self.workdir / "registries.conf")},
        )

    def _buildah(self, args: list[str], deadline: float) -> str:
        return self._stream([*self._buildah_base(), *args], deadline, as_build_user=True)

    def _pull_base(self, image: str, index: int, deadline: float) -> None:
        """The worker fetches a base image with the pull robot's credentials, outside the
        sandbox; the build user then loads it into its own storage from a local folder."""
        name = qualified_name(image)
        self._check_base_registry(name)
        copy = self.workdir / "bases" / str(index)
        pull = skopeo.copy_args(
            f"docker://{name}",
            f"dir:{copy}",
            "--authfile",
            self._pull_auth(),
            skopeo.tls_flag("src-tls-verify", not self._insecure()),
        )
        self._stream(
            skopeo.command(*pull),
            deadline,
            shown=["skopeo", "copy", f"docker://{name}"],
        )
        _make_readable(copy)
        image_id = self._buildah(["pull", "--quiet", f"dir:{copy}"], deadline).strip()
        self._buildah(["tag", image_id.splitlines()[-1], name], deadline)

    def _check_base_registry(self, name: str) -> None:
        """This registry is always allowed; any other must pass the outbound guard, or a
        FROM line would make the worker connect to the host's internal services."""
        registry = name.split("/", 1)[0]
        if registry == self._registry_host():
            return
        host, port = _split_registry(registry)
        try:
            outbound.check_host(self.context.settings, host, port)
        except outbound.OutboundRefused as exc:
            raise BuildFailed(f"Could not pull the base image {name}: {exc}") from exc

    def _build(
        self, dockerfile: Path, build_context: Path, local_name: str, deadline: float
    ) -> None:
        """`buildah bud` inside the sandbox's namespaces, with every RUN step an OCI container."""
        settings = self.context.settings
        isolated = settings.BUILD_NETWORK == "isolated"
        if isolated:
            # The filter is global to the host: make sure it is this server's before each build.
            refused = sandbox.install_network_filter(settings, self.account)
            if refused is not None:
                raise RuntimeError(refused)
        bud = buildah.bud_command(
            self._sandbox_dir(),
            runtime=sandbox.runtime(),
            network="host" if isolated else "none",
            dns=SANDBOX_DNS if isolated else None,
            ulimits=sandbox.ulimit_args(self.limits),
            dockerfile=dockerfile,
            tag=local_name,
            context=build_context,
        )
        command = [
            *self._buildah_base(),
            "unshare",
            "--",
            "unshare",
            "--pid",
            "--fork",
            "--kill-child",
            "--mount-proc",
            "--ipc",
            "--uts",
            "--",
            "sh",
            "-c",
            sandbox.LAUNCHER,
            "sandbox",
            sandbox.network_mode(settings),
            str(self._sandbox_dir() / "run"),
            *bud,
        ]
        self.cgroup = sandbox.BuildCgroup.create(self.build_uuid, self.limits)
        self._stream(command, deadline, shown=["buildah", "bud"], as_build_user=True)

    def _push(self, local_name: str, deadline: float) -> None:
        """The build user exports the image to a folder; the worker pushes it with its token."""
        exported = self._sandbox_dir() / "out"
        self._buildah(["push", "--quiet", f"{local_name}:latest", f"dir:{exported}"], deadline)
        token = build_tokens.push_token(
            self.context.settings, _keyring(self.context), self.repository, self.on_behalf_of
        )
        source = f"dir:{exported}"
        for tag in self.tags:
            destination = f"docker://{self._registry_host()}/{self.repository}:{tag}"
            push = skopeo.copy_args(
                source,
                destination,
                "--dest-registry-token",
                token,
                skopeo.tls_flag("dest-tls-verify", not self._insecure()),
            )
            self._stream(
                skopeo.command(*push),
                deadline,
                shown=["skopeo", "copy", source, destination],
            )

    def _stream(
        self,
        command: list[str],
        deadline: float,
        shown: list[str] | None = None,
        *,
        as_build_user: bool = False,
    ) -> str:
        """Run a command, logging each output line as it comes; stop on cancel, timeout or a
        limit. Build-user commands never run as root. Returns the output."""
        if self.context.stopping.is_set():
            self.stop_reason = "shutdown"
            raise BuildStopped("shutdown")
        process = self._spawn(command, as_build_user)
        self.process = process
        watcher = threading.Thread(target=self._watch, args=(process, deadline), daemon=True)
        watcher.start()
        output: list[str] = []
        with self.context.session_factory() as session:
            for raw in process.stdout:
                line = raw.rstrip("\n")
                if not line.strip():
                    continue
                output.append(line)
                entry_type = "command" if _STEP_LINE.match(line) else None
                build_rules.append_log(session, self.build_id, line, entry_type)
                session.commit()
        process.wait()
        watcher.join()
        self.process = None
        self._raise_for_outcome(process.returncode, output, shown or command)
        return "\n".join(output)

    def _spawn(self, command: list[str], as_build_user: bool) -> subprocess.Popen[str]:
        options: dict[str, Any] = {"env": self._env(), "cwd": self.workdir}
        if as_build_user:
            options = {
                "env": self._build_env(),
                "cwd": self._sandbox_dir(),
                "user": self.account.uid,
                "group": self.account.gid,
                "extra_groups": [],
            }
            if self.cgroup is not None:
                # Root moves the launcher into the build's cgroup, then becomes the build user.
                command = [
                    "sh",
                    "-c",
                    'echo $$ > "$0" && exec setpriv --reuid="$1" --regid="$2" --clear-groups'
                    ' --pdeathsig KILL -- "$@"',
                    self.cgroup.procs_file(),
                    str(self.account.uid),
                    str(self.account.gid),
                    *command,
                ]
                options = {**options, "user": None, "group": None, "extra_groups": None}
        return subprocess.Popen(
            dies_with_worker(command),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            bufsize=1,
            start_new_session=True,
            **options,
        )

    def _raise_for_outcome(self, returncode: int, output: list[str], shown: list[str]) -> None:
        settings = self.context.settings
        if self.stop_reason == "timeout":
            raise BuildFailed(
                f"The build took longer than {settings.BUILD_TIMEOUT} seconds (BUILD_TIMEOUT)"
            )
        if self.stop_reason == "storage":
            raise BuildFailed(_limit_message("storage", settings))
        if self.stop_reason is not None:
            raise BuildStopped(self.stop_reason)
        if returncode == 0:
            return
        limit = self.cgroup.hit() if self.cgroup is not None else None
        limit = limit or _limit_in_output(output)
        if limit is not None:
            raise BuildFailed(_limit_message(limit, settings))
        errors = [line for line in output if line.lower().startswith("error")]
        name = " ".join(shown[:2]) if shown[0] == "skopeo" else "buildah"
        raise BuildFailed(errors[-1] if errors else f"{name} exited with status {returncode}")

    def _watch(self, process: subprocess.Popen[str], deadline: float) -> None:
        """Kill the process group when the build is cancelled, times out, outgrows its storage
        or the worker stops."""
        storage_checked = time.monotonic()
        while process.poll() is None:
            reason = None
            if self.context.stopping.is_set():
                reason = "shutdown"
            elif time.monotonic() > deadline:
                reason = "timeout"
            elif time.monotonic() - storage_checked > STORAGE_CHECK_SECONDS:
                storage_checked = time.monotonic()
                if sandbox.tree_size(self._sandbox_dir()) > self.limits.storage_bytes:
                    reason = "storage"
            if reason is None:
                with self.context.session_factory() as session:
                    if build_rules.current_phase(session, self.build_id) == build_rules.CANCELLED:
                        reason = "cancelled"
            if reason is not None:
                self.stop_reason = reason
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                return
            # Returns as soon as the process ends, so a finished step is not held up.
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(CANCEL_POLL_SECONDS)


_LIMIT_SIGNS = {
    "memory": ("cannot allocate memory", "out of memory"),
    "pids": ("resource temporarily unavailable", "can't fork"),
    "storage": ("file too large", "no space left on device"),
}


def _limit_in_output(output: list[str]) -> str | None:
    """Which rlimit a failed step ran into, judged by the errors its last lines report."""
    tail = "\n".join(output[-20:]).lower()
    for limit, signs in _LIMIT_SIGNS.items():
        if any(sign in tail for sign in signs):
            return limit
    return None


def _limit_message(limit: str, settings) -> str:
    if limit == "memory":
        return f"The build ran out of memory (BUILD_MEMORY_LIMIT_MB = {settings.BUILD_MEMORY_LIMIT_MB})"
    if limit == "pids":
        return (
            f"The build started too many processes (BUILD_PIDS_LIMIT = {settings.BUILD_PIDS_LIMIT})"
        )
    return f"The build used too much storage (BUILD_STORAGE_LIMIT_MB = {settings.BUILD_STORAGE_LIMIT_MB})"


def _make_readable(root: Path) -> None:
    """Let the build user read a folder of root's (written under umask 077)."""
    root.chmod(0o755)
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            os.chmod(os.path.join(folder, name), 0o755)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o644)


def _chown_tree(root: Path, account: sandbox.BuildAccount) -> None:
    """Hand a folder the worker filled to the build user; links are changed, not followed."""
    os.lchown(root, account.uid, account.gid)
    for folder, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            os.lchown(os.path.join(folder, name), account.uid, account.gid)


def _split_registry(registry: str) -> tuple[str, int]:
    """Host and port of a registry as written in an image name (`[::1]:5000`, `host:5000`)."""
    if registry == "docker.io":
        return "registry-1.docker.io", 443
    if registry.startswith("[") and "]" in registry:
        host, _, rest = registry[1:].partition("]")
        port = rest.removeprefix(":")
    else:
        host, _, port = registry.rpartition(":") if ":" in registry else (registry, "", "")
    return host, int(port) if port.isdigit() else 443


def qualified_name(image: str) -> str:
    """A base image name in full (docker.io/library/busybox:latest for busybox)."""
    first, _, rest = image.partition("/")
    if not rest or ("." not in first and ":" not in first and first != "localhost"):
        name = image if rest else f"library/{image}"
        image = f"docker.io/{name}"
    last = image.rsplit("/", 1)[-1]
    if "@" not in last and ":" not in last:
        image += ":latest"
    return image


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
