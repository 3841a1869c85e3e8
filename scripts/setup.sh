#!/usr/bin/env bash
# One command from a fresh machine to a running container: installs what Berth needs, builds and installs
# berthd, berth-init and berth, starts berthd in the background, imports a busybox base image built from Debian's
# busybox-static, and runs `berth run --rm busybox echo hello`.
# Run as root from the repository: sudo scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "setup.sh: run as root (containers need namespaces, mounts and cgroups)" >&2; exit 1; }
command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin
command -v go >/dev/null || { echo "setup.sh: Go 1.26+ is needed to build Berth (https://go.dev/dl)" >&2; exit 1; }

# gcc and libc6-dev: berthd has a small C constructor (exec joins a container's namespaces before the
# Go runtime starts) and is linked statically.
if ! [ -x /bin/busybox ] || ! command -v runc >/dev/null || ! command -v gcc >/dev/null || ! [ -f /usr/lib/x86_64-linux-gnu/libc.a ]; then
  echo "== installing packages (busybox-static, runc, gcc, libc6-dev)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static runc gcc libc6-dev >/dev/null
fi

echo "== building"
make -s build
install -m 0755 bin/berthd bin/berth-init bin/berth /usr/local/bin/

SOCK=/run/berth/berth.sock
if ! berth version >/dev/null 2>&1; then
  echo "== starting berthd (log: /var/log/berthd.log)"
  nohup berthd >>/var/log/berthd.log 2>&1 &
  for _ in $(seq 1 100); do
    berth version >/dev/null 2>&1 && break
    sleep 0.1
  done
  berth version >/dev/null || { echo "berthd did not start; see /var/log/berthd.log" >&2; exit 1; }
fi

if ! berth image inspect busybox:latest >/dev/null 2>&1; then
  echo "== importing busybox:latest from /bin/busybox"
  scripts/busybox-rootfs.sh | berth import - busybox:latest
fi

echo "== berth run --rm busybox echo hello"
berth run --rm busybox echo hello
echo "Berth is running: socket $SOCK (DOCKER_HOST=unix://$SOCK works for the docker CLI too)."
