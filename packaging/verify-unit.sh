#!/bin/sh
# Verifies packaging/potproxy.service with systemd-analyze without installing anything: a scratch
# root holds the unit, the system's own units, and a built binary at /usr/local/bin/potproxy.
# Usage: packaging/verify-unit.sh [path/to/potproxy]   (default: target/release/potproxy)
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$here/target/release/potproxy}
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/usr/local/bin" "$root/etc/systemd/system" "$root/usr/lib/systemd" "$root/bin"
cp -a /usr/lib/systemd/system "$root/usr/lib/systemd/"
cp "$bin" "$root/usr/local/bin/potproxy"
cp /bin/kill "$root/bin/kill"
cp "$here/packaging/potproxy.service" "$root/etc/systemd/system/"
systemd-analyze verify --man=no --root="$root" potproxy.service
systemd-analyze security --offline=yes --root="$root" potproxy.service | tail -1
