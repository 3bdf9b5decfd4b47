"""The build sandbox: what a Dockerfile's RUN and ADD steps may touch on this host.

Every build runs as the unprivileged BUILD_USER through rootless buildah: root inside the
build is that user on the host, and the build's other ids come from its /etc/subuid range.
The whole `buildah bud` runs inside fresh PID, IPC, UTS, mount and network namespaces; each
RUN step is an OCI container (runc) inside them, so it is pivoted into its own root and sees
no host device. The network namespace is wired to the internet by slirp4netns with host
loopback disabled, and an nftables table keyed on the build user's uid refuses loopback,
link-local, private and metadata addresses on the host side. Base images are pulled, and the
result pushed, by the worker itself with skopeo; the build user never sees a credential.

When the host cannot provide any of this, builds are not run at all (`unavailable_reason`).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cargohold.adapters import buildah, outbound, skopeo
from cargohold.config import Settings

log = logging.getLogger(__name__)

NFT_TABLE = "cargohold_build"
PROBE_TTL_SECONDS = 60.0
SUBORDINATE_IDS_NEEDED = 65536
CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_PARENT = "cargohold-builds"

# Addresses a build never reaches unless SSRF_ALLOWED_HOSTS names them.
BLOCKED_NETWORKS = (
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "::/128",
    "::1/128",
    "::ffff:0:0/96",
    "64:ff9b::/96",
    "fc00::/7",
    "fe80::/10",
    "fec0::/10",
    "ff00::/8",
)

# Runs as root inside the build user's namespace, as PID 1 of a fresh PID namespace:
# starts the build in a new network namespace, wires that to slirp4netns (which opens its
# sockets on the host as the build user, where nftables filters them) and waits for it.
# The build starts only once the network is up, and not at all if slirp4netns fails.
LAUNCHER = r"""
set -eu
mode=$1; run=$2; shift 2
if [ "$mode" = none ]; then exec unshare --net -- "$@"; fi
loopback=--disable-host-loopback
if [ "$mode" = isolated-with-loopback ]; then loopback=; fi
mkfifo "$run/netns-started" "$run/network-ready"
unshare --net -- sh -c '
    ready=$1; shift
    echo > "$0"
    [ "$(head -c1 < "$ready")" = 1 ] || { echo "error: the build network did not start"; exit 125; }
    exec "$@"' "$run/netns-started" "$run/network-ready" "$@" &
build=$!
read -r _ < "$run/netns-started"
slirp4netns --configure --mtu=65520 $loopback --ready-fd=3 "$build" tap0 \
    3>"$run/network-ready" >/dev/null 2>&1 &
wait "$build"
"""


@dataclass(frozen=True)
class BuildAccount:
    name: str
    uid: int
    gid: int
    home: str


@dataclass(frozen=True)
class Limits:
    timeout_s: int
    memory_bytes: int
    pids: int
    storage_bytes: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            timeout_s=settings.BUILD_TIMEOUT,
            memory_bytes=settings.BUILD_MEMORY_LIMIT_MB * 1024 * 1024,
            pids=settings.BUILD_PIDS_LIMIT,
            storage_bytes=settings.BUILD_STORAGE_LIMIT_MB * 1024 * 1024,
        )


def work_dir(settings: Settings) -> str:
    return settings.BUILD_WORK_DIR or tempfile.gettempdir()


def build_account(settings: Settings) -> BuildAccount | None:
    try:
        entry = pwd.getpwnam(settings.BUILD_USER)
    except KeyError:
        return None
    return BuildAccount(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir)


# --- is the host able to sandbox builds? -------------------------------------------------


_probe_lock = threading.Lock()
_probe_cache: dict[tuple[str, str, str], tuple[float, str | None]] = {}


def unavailable_reason(settings: Settings) -> str | None:
    """Why builds cannot run sandboxed on this host, or None when they can (cached a minute)."""
    key = (settings.BUILD_USER, settings.BUILD_NETWORK, work_dir(settings))
    with _probe_lock:
        cached = _probe_cache.get(key)
        if cached is not None and time.monotonic() - cached[0] < PROBE_TTL_SECONDS:
            return cached[1]
        reason = _probe(settings)
        _probe_cache[key] = (time.monotonic(), reason)
    return reason


def _probe(settings: Settings) -> str | None:
    if os.geteuid() != 0:
        return "the build worker must run as root to start builds as BUILD_USER"
    account = build_account(settings)
    if account is None:
        return (
            f"the build user {settings.BUILD_USER!r} does not exist (run scripts/build-sandbox.sh)"
        )
    if account.uid == 0:
        return "BUILD_USER must not be root"
    tools = [buildah.BUILDAH, skopeo.SKOPEO, "newuidmap", "newgidmap", "unshare", runtime()]
    if settings.BUILD_NETWORK == "isolated":
        tools += ["slirp4netns", "nft"]
    missing = [tool for tool in tools if not tool or not shutil.which(tool)]
    if missing:
        return "missing on this host: " + ", ".join(name or "runc" for name in missing)
    for path in ("/etc/subuid", "/etc/subgid"):
        if subordinate_ids(Path(path), account) < SUBORDINATE_IDS_NEEDED:
            return f"{path} gives {account.name} fewer than {SUBORDINATE_IDS_NEEDED} ids"
    if settings.BUILD_NETWORK == "isolated" and not os.access("/dev/net/tun", os.R_OK | os.W_OK):
        return "/dev/net/tun is missing"
    return _probe_user_namespace(account, work_dir(settings))


def runtime() -> str:
    """The OCI runtime for RUN steps: runc works on every cgroup layout, crun not on hybrid."""
    for name in ("runc", "crun"):
        if shutil.which(name):
            return name
    return ""


def subordinate_ids(path: Path, account: BuildAccount) -> int:
    """How many subordinate ids /etc/subuid or /etc/subgid grants the account."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return 0
    total = 0
    for line in lines:
        parts = line.strip().split(":")
        if len(parts) == 3 and parts[0] in (account.name, str(account.uid)):
            total += int(parts[2]) if parts[2].isdigit() else 0
    return total


def _probe_user_namespace(account: BuildAccount, parent: str) -> str | None:
    """Ask buildah, as the build user in a folder like a build's, to enter the build user's
    namespace; the kernel may refuse, or the folder may be out of the build user's reach."""
    with _scratch_home(account, parent) as home:
        try:
            result = subprocess.run(
                [buildah.BUILDAH, "unshare", "--", "id", "-u"],
                env=account_env(home),
                user=account.uid,
                group=account.gid,
                extra_groups=[],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
                cwd=home,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"user namespaces are not usable: {exc}"
    if result.returncode != 0 or result.stdout.strip() != "0":
        detail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return f"the build user cannot start a user namespace in {parent}: {detail}"
    return None


@contextlib.contextmanager
def _scratch_home(account: BuildAccount, parent: str) -> Iterator[str]:
    """A throw-away home folder owned by the build user."""
    path = tempfile.mkdtemp(prefix="cargohold-probe-", dir=parent)
    try:
        os.chown(path, account.uid, account.gid)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def account_env(home: str | Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The whole environment of a process run as the build user: nothing of the server's."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
        "HOME": str(home),
        "XDG_RUNTIME_DIR": str(Path(home) / "run"),
        "TMPDIR": str(Path(home) / "tmp"),
        **(extra or {}),
    }


# --- the network filter -------------------------------------------------------------------


Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# An address range builds may reach anyway, on one TCP port or (None) on all.
Target = tuple[Network, int | None]


def allowed_targets(settings: Settings) -> list[Target]:
    """SSRF_ALLOWED_HOSTS as the filter needs it: CIDR ranges and addresses on every port,
    `host:port` entries on that port, host names resolved now."""
    allowed = outbound.allow_list(settings)
    targets: list[Target] = [(network, None) for network in allowed.networks]
    for name in sorted(allowed.names):
        host, port = _split_port(name)
        for address in _addresses(host):
            targets.append((ipaddress.ip_network(address), port))
    return targets


def _split_port(name: str) -> tuple[str, int | None]:
    host, _, port = name.rpartition(":")
    if host and ":" not in host and port.isdigit():
        return host, int(port)
    return name, None


def _addresses(host: str) -> list[outbound.IPAddress]:
    address = outbound.parse_address(host)
    if address is not None:
        return [address]
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        log.warning("SSRF_ALLOWED_HOSTS entry %r does not resolve; builds cannot reach it", host)
        return []
    return sorted({ipaddress.ip_address(info[4][0]) for info in infos}, key=str)


def nameservers(resolv_conf: Path = Path("/etc/resolv.conf")) -> list[str]:
    """The host's DNS servers, which slirp4netns forwards the build's queries to."""
    servers = []
    try:
        lines = resolv_conf.read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            try:
                servers.append(str(ipaddress.ip_address(parts[1].split("%")[0])))
            except ValueError:
                continue
    return servers


def rule_set(uid: int, allowed: list[Target], dns_servers: list[str]) -> str:
    """The nftables table that keeps sockets of the build user off internal addresses."""
    blocked4 = [n for n in BLOCKED_NETWORKS if ":" not in n]
    blocked6 = [n for n in BLOCKED_NETWORKS if ":" in n]
    lines = [
        f"table inet {NFT_TABLE} {{",
        "  chain output {",
        "    type filter hook output priority 0; policy accept;",
    ]
    for server in dns_servers:
        family = "ip6" if ":" in server else "ip"
        for proto in ("udp", "tcp"):
            lines.append(f"    meta skuid {uid} {family} daddr {server} {proto} dport 53 accept")
    for network, port in allowed:
        family = "ip" if network.version == 4 else "ip6"
        only_port = f" tcp dport {port}" if port is not None else ""
        lines.append(f"    meta skuid {uid} {family} daddr {network}{only_port} accept")
    lines += [
        f"    meta skuid {uid} ip daddr {{ {', '.join(blocked4)} }} reject",
        f"    meta skuid {uid} ip6 daddr {{ {', '.join(blocked6)} }} reject",
        "  }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def install_network_filter(settings: Settings, account: BuildAccount) -> str | None:
    """Replace the build user's nftables table; returns why it failed, or None."""
    rules = rule_set(account.uid, allowed_targets(settings), nameservers())
    # Adding then deleting first makes the delete succeed whether or not the table exists.
    script = f"add table inet {NFT_TABLE}\ndelete table inet {NFT_TABLE}\n{rules}"
    result = subprocess.run(
        ["nft", "-f", "-"], input=script, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        return "nftables refused the build network filter: " + result.stderr.strip()
    return None


def network_mode(settings: Settings) -> str:
    """The launcher's network mode. The host's loopback is reachable from a build (through
    slirp4netns' gateway 10.0.2.2) only when SSRF_ALLOWED_HOSTS names a loopback address;
    the filter then still refuses every other loopback address."""
    if settings.BUILD_NETWORK == "none":
        return "none"
    loopback = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
    for network, _ in allowed_targets(settings):
        if any(network.version == lo.version and network.overlaps(lo) for lo in loopback):
            return "isolated-with-loopback"
    return "isolated"


# --- limits --------------------------------------------------------------------------------


def cgroup_v2_controllers() -> set[str]:
    """Controllers of a unified cgroup v2 hierarchy at /sys/fs/cgroup; empty elsewhere."""
    try:
        return set((CGROUP_ROOT / "cgroup.controllers").read_text().split())
    except OSError:
        return set()


class BuildCgroup:
    """A cgroup v2 group holding one build, with its memory and process limits."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, name: str, limits: Limits) -> BuildCgroup | None:
        if not {"memory", "pids"} <= cgroup_v2_controllers():
            return None
        parent = CGROUP_ROOT / CGROUP_PARENT
        try:
            parent.mkdir(exist_ok=True)
            (CGROUP_ROOT / "cgroup.subtree_control").write_text("+memory +pids")
            (parent / "cgroup.subtree_control").write_text("+memory +pids")
            path = parent / name
            path.mkdir()
            (path / "memory.max").write_text(str(limits.memory_bytes))
            (path / "memory.swap.max").write_text("0")
            (path / "pids.max").write_text(str(limits.pids))
        except OSError as exc:
            log.warning("cgroup v2 limits unavailable, using rlimits: %s", exc)
            return None
        return cls(path)

    def procs_file(self) -> str:
        return str(self.path / "cgroup.procs")

    def hit(self) -> str | None:
        """Which limit the kernel enforced on this group, if any."""
        if _event_count(self.path / "memory.events", "oom_kill") > 0:
            return "memory"
        if _event_count(self.path / "pids.events", "max") > 0:
            return "pids"
        return None

    def remove(self) -> None:
        for _ in range(50):
            with contextlib.suppress(OSError):
                (self.path / "cgroup.kill").write_text("1")
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.1)
        log.warning("could not remove build cgroup %s", self.path)


def _event_count(path: Path, name: str) -> int:
    try:
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == name:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


def ulimit_args(limits: Limits) -> list[str]:
    """rlimits for every RUN process, which also hold where there is no cgroup v2."""
    return [
        "--ulimit",
        f"data={limits.memory_bytes}:{limits.memory_bytes}",
        "--ulimit",
        f"nproc={limits.pids}:{limits.pids}",
        "--ulimit",
        f"fsize={limits.storage_bytes}:{limits.storage_bytes}",
    ]


def tree_size(root: Path) -> int:
    """Bytes allocated under root, counting each hard-linked file once."""
    total = 0
    seen: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
            elif (info.st_dev, info.st_ino) not in seen:
                seen.add((info.st_dev, info.st_ino))
                total += info.st_blocks * 512
    return total
