#!/usr/bin/env bash
# make bench: berthd side by side with a reference dockerd in one run, through the shared harness
# (../shared/bench/bench.sh: stock docker CLI against both sockets), plus the berth CLI's own end-to-end
# time. Results land in bench-out/. Run as root from the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
harness=${BENCH_HARNESS:-$repo/../shared/bench/bench.sh}
[ -x "$harness" ] || [ -f "$harness" ] || { echo "bench: $harness not found" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "bench: run as root" >&2; exit 1; }

need=()
command -v hyperfine >/dev/null || need+=(hyperfine)
command -v jq >/dev/null || need+=(jq)
command -v dockerd >/dev/null || need+=(docker.io)
[ -x /bin/busybox ] || need+=(busybox-static)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
docker_cli=/usr/local/bin/docker
[ -x $docker_cli ] || docker_cli=docker

out=$repo/bench-out
mkdir -p "$out"
work=$(mktemp -d /tmp/berth-bench.XXXXXX)
sock=$work/exec/berth.sock
started_dockerd=""
cleanup() {
  set +e
  if [ -S "$sock" ]; then
    ids=$(DOCKER_HOST=unix://$sock $docker_cli ps -aq)
    [ -n "$ids" ] && DOCKER_HOST=unix://$sock $docker_cli rm -f $ids >/dev/null
  fi
  [ -n "${berthd_pid:-}" ] && kill "$berthd_pid" && wait "$berthd_pid" 2>/dev/null
  pkill -f "berth-monitor --exec-root $work/exec"
  [ -n "$started_dockerd" ] && kill "$(cat /run/docker-ref.pid)" 2>/dev/null && sleep 2
  grep -o "$work[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l
  rm -rf "$work"
}
trap cleanup EXIT

make -s build
scripts/busybox-rootfs.sh >"$work/busybox-rootfs.tar"

bin/berthd --data-root "$work/data" --exec-root "$work/exec" >"$out/berthd.log" 2>&1 &
berthd_pid=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done

if ! DOCKER_HOST=unix:///run/docker-ref.sock $docker_cli version >/dev/null 2>&1; then
  dockerd --data-root /var/lib/docker-ref -H unix:///run/docker-ref.sock --exec-root /run/docker-ref \
    --pidfile /run/docker-ref.pid >"$out/dockerd.log" 2>&1 &
  started_dockerd=1
  for _ in $(seq 300); do DOCKER_HOST=unix:///run/docker-ref.sock $docker_cli version >/dev/null 2>&1 && break; sleep 0.1; done
fi

# Metrics Berth has the features for so far (h: build and i: registry come with their issues).
export BENCH_METRICS=${BENCH_METRICS:-a b c d e f g}
export BENCH_ROOTFS_TAR=$work/busybox-rootfs.tar
export BENCH_OUT=$out/bench.json
export BENCH_DOCKER_BIN=$docker_cli
bash "$harness" docker=/run/docker-ref.sock berth="$sock" | tee "$out/table.md"

echo
echo "berth CLI against berthd, run --rm busybox true:"
BERTH_HOST=unix://$sock bin/berth image inspect busybox:latest >/dev/null 2>&1 ||
  BERTH_HOST=unix://$sock bin/berth import "$work/busybox-rootfs.tar" busybox:latest >/dev/null
hyperfine -N -w 3 -r "${BENCH_RUNS:-30}" --export-json "$out/berth-cli.json" \
  "$repo/bin/berth -H unix://$sock run --rm busybox true" | tee "$out/berth-cli.txt"
