#!/usr/bin/env bash
# Prepare this host for sandboxed builds (run as root; safe to run again):
#  - the packages the sandbox uses: rootless buildah with runc, newuidmap/newgidmap,
#    slirp4netns and nftables;
#  - the unprivileged build user (BUILD_USER, default cargohold-build) with 65536
#    subordinate uids and gids that no other account uses;
#  - /dev/net/tun usable by that user (slirp4netns opens it inside the build's namespace).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

BUILD_USER=${CARGOHOLD_BUILD_USER:-cargohold-build}
apt_install buildah skopeo runc uidmap slirp4netns nftables util-linux

if ! getent passwd "$BUILD_USER" >/dev/null; then
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin "$BUILD_USER"
fi

# The first free block of 65536 ids above every range already handed out (and above 100000).
next_free_range() {
    awk -F: 'BEGIN { top = 100000 } NF == 3 && $2 + $3 > top { top = $2 + $3 } END { print top }' \
        /etc/subuid /etc/subgid
}
has_range() { grep -q "^$BUILD_USER:" "$1" 2>/dev/null; }
touch /etc/subuid /etc/subgid
if ! has_range /etc/subuid || ! has_range /etc/subgid; then
    start=$(next_free_range)
    has_range /etc/subuid || usermod --add-subuids "$start-$((start + 65535))" "$BUILD_USER"
    has_range /etc/subgid || usermod --add-subgids "$start-$((start + 65535))" "$BUILD_USER"
fi

if [ -c /dev/net/tun ]; then
    chmod 0666 /dev/net/tun
fi
echo "build sandbox ready for $BUILD_USER: $(grep "^$BUILD_USER:" /etc/subuid)"
