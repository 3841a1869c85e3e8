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
had_docker0=$(ip -o link show docker0 2>/dev/null || true)
had_tables=$(nft list tables 2>/dev/null || true)
cleanup() {
  set +e
  if [ -S "$sock" ]; then
    ids=$(DOCKER_HOST=unix://$sock $docker_cli ps -aq)
    [ -n "$ids" ] && DOCKER_HOST=unix://$sock $docker_cli rm -f $ids >/dev/null
  fi
  [ -n "${berthd_pid:-}" ] && kill "$berthd_pid" && wait "$berthd_pid" 2>/dev/null
  pkill -f "berth-monitor --exec-root $work/exec"
  ip link del berthbench0 2>/dev/null
  nft delete table ip berth-berthbench0 2>/dev/null
  stale=$(DOCKER_HOST=unix:///run/docker-ref.sock $docker_cli ps -aq --filter name=bench-tty- 2>/dev/null)
  [ -n "$stale" ] && DOCKER_HOST=unix:///run/docker-ref.sock $docker_cli rm -f $stale >/dev/null
  if [ -n "$started_dockerd" ] && dpid=$(cat /run/docker-ref.pid 2>/dev/null); then
    kill "$dpid"
    for _ in $(seq 400); do kill -0 "$dpid" 2>/dev/null || break; sleep 0.1; done
    # dockerd leaves its bridge behind on purpose; this run made it, so it goes.
    [ -z "$had_docker0" ] && ip link del docker0 2>/dev/null
    # So do the iptables(-nft) tables dockerd made for its NAT and filter rules, if there were none before.
    for t in "ip nat" "ip filter" "ip6 nat" "ip6 filter"; do
      grep -qx "table $t" <<<"$had_tables" || nft delete table $t 2>/dev/null
    done
  fi
  grep -o "$work[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

make -s build
scripts/busybox-rootfs.sh >"$work/busybox-rootfs.tar"

# A bridge of its own, removed with the run, so an installed berthd's berth0 is left alone.
bin/berthd --data-root "$work/data" --exec-root "$work/exec" --bridge berthbench0 >"$out/berthd.log" 2>&1 &
berthd_pid=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done

if ! DOCKER_HOST=unix:///run/docker-ref.sock $docker_cli version >/dev/null 2>&1; then
  dockerd --data-root /var/lib/docker-ref -H unix:///run/docker-ref.sock --exec-root /run/docker-ref \
    --pidfile /run/docker-ref.pid >"$out/dockerd.log" 2>&1 &
  started_dockerd=1
  for _ in $(seq 600); do DOCKER_HOST=unix:///run/docker-ref.sock $docker_cli version >/dev/null 2>&1 && break; sleep 0.1; done
  DOCKER_HOST=unix:///run/docker-ref.sock $docker_cli version >/dev/null 2>&1 ||
    { echo "bench: the reference dockerd did not start; see $out/dockerd.log" >&2; exit 1; }
fi

# Every metric of the harness: a-g the engine core, h the Dockerfile build, i push/pull.
export BENCH_METRICS=${BENCH_METRICS:-a b c d e f g h i}
export BENCH_ROOTFS_TAR=$work/busybox-rootfs.tar
export BENCH_OUT=$out/bench.json
export BENCH_DOCKER_BIN=$docker_cli
if [ -z "${BENCH_EXTRAS_ONLY:-}" ]; then
bash "$harness" docker=/run/docker-ref.sock berth="$sock" | tee "$out/table.md"

# Let the harness's last step (200 MB import/save) reach the disk before timing anything else.
sync
sleep 3
echo
echo "berth CLI against berthd, run --rm busybox true:"
BERTH_HOST=unix://$sock bin/berth image inspect busybox:latest >/dev/null 2>&1 ||
  BERTH_HOST=unix://$sock bin/berth import "$work/busybox-rootfs.tar" busybox:latest >/dev/null
hyperfine -N -w 3 -r "${BENCH_RUNS:-30}" --export-json "$out/berth-cli.json" \
  "$repo/bin/berth -H unix://$sock run --rm busybox true" | tee "$out/berth-cli.txt"

# Lifecycle extras (issue 4), same docker CLI against both engines: exec through the berth CLI,
# `stats --no-stream` over 20 running containers, and the engine memory each TTY container with a
# client attached costs (berthd + monitor for Berth; dockerd + containerd + shims for Docker).
echo
echo "berth CLI against berthd, exec into a running container:"
BERTH_HOST=unix://$sock bin/berth run -d --name bench-exec busybox sleep 100000 >/dev/null
hyperfine -N -w 3 -r "${BENCH_RUNS:-30}" --export-json "$out/berth-cli-exec.json" \
  "$repo/bin/berth -H unix://$sock exec bench-exec true" | tee "$out/berth-cli-exec.txt"
BERTH_HOST=unix://$sock bin/berth rm -f bench-exec >/dev/null
fi
BERTH_HOST=unix://$sock bin/berth image inspect busybox:latest >/dev/null 2>&1 ||
  BERTH_HOST=unix://$sock bin/berth import "$work/busybox-rootfs.tar" busybox:latest >/dev/null

engine_rss_kib() { # sum of RSS of the engine's processes, by command name
  case $1 in
    docker) ps -C dockerd,containerd,containerd-shim,containerd-shim-runc-v2 -o rss= ;;
    berth) ps -C berthd,berth-monitor -o rss= ;;
  esac | awk '{s+=$1} END {print s+0}'
}
declare -A host=([docker]=unix:///run/docker-ref.sock [berth]=unix://$sock)
# BENCH_SECTIONS picks among the extras below (default: all of them).
want() { [[ " ${BENCH_SECTIONS:-build stats network volumes registry} " == *" $1 "* ]]; }
# Build extras (issue 7): the harness's fully cached rebuild (10 RUN steps and a 50 MB COPY) again, on
# one context, through the docker CLI against both engines (legacy builder: the CLI tars and uploads
# the whole context every time) and through the berth CLI, whose context sync sends only the stat data
# of an unchanged context.
if want build; then
ctx=$work/build-ctx
mkdir -p "$ctx"
head -c $((50 << 20)) /dev/urandom >"$ctx/bench-ctx.bin"
{
  echo 'FROM busybox'
  for i in $(seq 1 10); do echo "RUN echo step $i > /bench-step-$i.txt"; done
  echo 'COPY bench-ctx.bin /bench-ctx.bin'
} >"$ctx/Dockerfile"
{
  echo
  echo "| fully cached rebuild, 10 RUN + 50 MB COPY: median (ms) | docker | berth |"
  echo "|---|---|---|"
  declare -A rebuild_ms
  for e in docker berth; do
    h=${host[$e]}
    DOCKER_HOST=$h $docker_cli image inspect busybox:latest >/dev/null 2>&1 ||
      DOCKER_HOST=$h $docker_cli import "$work/busybox-rootfs.tar" busybox:latest >/dev/null
    # The legacy builder's deprecation notice goes to stderr; keep it (and any error) out of the table.
    DOCKER_HOST=$h DOCKER_BUILDKIT=0 $docker_cli build -q -t bench-rebuild:1 "$ctx" >/dev/null 2>>"$out/build.log"
    hyperfine -N -w 3 -r "${BENCH_RUNS:-30}" --export-json "$work/rebuild-$e.json" \
      "env DOCKER_HOST=$h DOCKER_BUILDKIT=0 $docker_cli build -q -t bench-rebuild:1 $ctx" >/dev/null 2>&1
    rebuild_ms[$e]=$(jq '.results[0].median*1000 | .*10 | round / 10' "$work/rebuild-$e.json")
  done
  hyperfine -N -w 3 -r "${BENCH_RUNS:-30}" --export-json "$work/rebuild-berthcli.json" \
    "$repo/bin/berth -H ${host[berth]} build -q -t bench-rebuild:1 $ctx" >/dev/null 2>&1
  sync_ms=$(jq '.results[0].median*1000 | .*10 | round / 10' "$work/rebuild-berthcli.json")
  echo "| docker CLI, DOCKER_BUILDKIT=0 (context tar uploaded) | ${rebuild_ms[docker]} | ${rebuild_ms[berth]} |"
  echo "| berth CLI (context sync: stat data only) | | ${sync_ms} |"
  for e in docker berth; do DOCKER_HOST=${host[$e]} $docker_cli rmi -f bench-rebuild:1 >/dev/null 2>&1; done
} | tee "$out/build.md"
rm -rf "$ctx"
fi
if want stats; then
{
  echo "| metric | docker | berth |"
  echo "|---|---|---|"
  declare -A stats_ms rss_per
  for e in docker berth; do
    h=${host[$e]}
    [ "$e" = docker ] && { DOCKER_HOST=$h $docker_cli image inspect busybox:latest >/dev/null 2>&1 ||
      DOCKER_HOST=$h $docker_cli import "$work/busybox-rootfs.tar" busybox:latest >/dev/null; }
    stale=$(DOCKER_HOST=$h $docker_cli ps -aq --filter name=bench-tty-)
    [ -n "$stale" ] && DOCKER_HOST=$h $docker_cli rm -f $stale >/dev/null
    before=$(engine_rss_kib "$e")
    # Clients read stdin from a fifo this script holds open, so they stay attached until killed.
    fifo=$work/attach-$e.fifo
    mkfifo "$fifo"
    exec 9<>"$fifo"
    pids=()
    for i in $(seq 20); do
      DOCKER_HOST=$h $docker_cli run -dit --name "bench-tty-$i" busybox sh >/dev/null
      # script gives each client a terminal of its own, as a user's would be.
      DOCKER_HOST=$h script -qfc "$docker_cli attach bench-tty-$i" /dev/null <"$fifo" >/dev/null 2>&1 &
      pids+=($!)
    done
    sleep 2
    after=$(engine_rss_kib "$e")
    rss_per[$e]=$(awk -v a="$after" -v b="$before" 'BEGIN {printf "%.2f", (a-b)/20/1024}')
    hyperfine -N -w 2 -r 10 --export-json "$work/stats-$e.json" \
      "$docker_cli -H $h stats --no-stream" >/dev/null 2>&1
    stats_ms[$e]=$(jq '.results[0].median*1000 | .*10 | round / 10' "$work/stats-$e.json")
    if [ "$e" = berth ]; then
      hyperfine -N -w 2 -r 10 --export-json "$work/stats-berthcli.json" \
        "$repo/bin/berth -H $h stats --no-stream" >/dev/null 2>&1
      stats_berth_cli=$(jq '.results[0].median*1000 | .*10 | round / 10' "$work/stats-berthcli.json")
    fi
    alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=$((alive+1)); done
    [ "$alive" = 20 ] || echo "bench: only $alive of 20 attach clients stayed attached on $e" >&2
    kill "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
    exec 9>&-
    for i in $(seq 20); do DOCKER_HOST=$h $docker_cli rm -f "bench-tty-$i" >/dev/null 2>&1; done
  done
  echo "| stats --no-stream, 20 running: median (ms) | ${stats_ms[docker]} | ${stats_ms[berth]} |"
  echo "| same through the berth CLI (ms) | | ${stats_berth_cli} |"
  echo "| engine RSS per TTY ctr with a client attached (MiB) | ${rss_per[docker]} | ${rss_per[berth]} |"
} | tee "$out/extras.md"
fi

# Networking extras (issue 5), same docker CLI against both engines: what the bridge adds to
# `run --rm true` (default network against --network none), TCP throughput container to container over
# the bridge, and from the host to a port published on 127.0.0.1 (dockerd's userland proxy there;
# Berth's DNAT in the kernel). tcpbench is a static Go program copied into the containers.
if want network; then
CGO_ENABLED=0 go build -o "$work/tcpbench" ./bench/tcpbench
net_mib=${BENCH_NET_MIB:-2000}
{
  echo
  echo "| network metric | docker | berth |"
  echo "|---|---|---|"
  declare -A none_ms bridge_ms c2c host_pub
  for e in docker berth; do
    h=${host[$e]}
    hyperfine -N -w 3 -r "${BENCH_RUNS:-30}" --export-json "$work/net-$e.json" \
      "$docker_cli -H $h run --rm --network none busybox true" "$docker_cli -H $h run --rm busybox true" >/dev/null 2>&1
    none_ms[$e]=$(jq '.results[0].median*1000 | .*10 | round / 10' "$work/net-$e.json")
    bridge_ms[$e]=$(jq '.results[1].median*1000 | .*10 | round / 10' "$work/net-$e.json")
    DOCKER_HOST=$h $docker_cli rm -f bench-net-srv bench-net-cli >/dev/null 2>&1 || true
    DOCKER_HOST=$h $docker_cli create --name bench-net-srv -p 127.0.0.1:18555:5001 busybox /tcpbench server :5001 >/dev/null
    DOCKER_HOST=$h $docker_cli cp "$work/tcpbench" bench-net-srv:/tcpbench
    DOCKER_HOST=$h $docker_cli start bench-net-srv >/dev/null
    ip=$(DOCKER_HOST=$h $docker_cli inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' bench-net-srv)
    DOCKER_HOST=$h $docker_cli create --name bench-net-cli busybox /tcpbench client "$ip:5001" "$net_mib" >/dev/null
    DOCKER_HOST=$h $docker_cli cp "$work/tcpbench" bench-net-cli:/tcpbench
    best=0
    for _ in 1 2 3; do
      r=$(DOCKER_HOST=$h $docker_cli start -a bench-net-cli)
      [ "${r:-0}" -gt "$best" ] && best=$r
    done
    c2c[$e]=$best
    best=0
    for _ in 1 2 3; do
      r=$("$work/tcpbench" client 127.0.0.1:18555 "$net_mib")
      [ "${r:-0}" -gt "$best" ] && best=$r
    done
    host_pub[$e]=$best
    DOCKER_HOST=$h $docker_cli rm -f bench-net-srv bench-net-cli >/dev/null
  done
  echo "| run --rm true, --network none: median (ms) | ${none_ms[docker]} | ${none_ms[berth]} |"
  echo "| run --rm true, default bridge: median (ms) | ${bridge_ms[docker]} | ${bridge_ms[berth]} |"
  echo "| TCP container to container over the bridge, best of 3 (MB/s) | ${c2c[docker]} | ${c2c[berth]} |"
  echo "| TCP host to 127.0.0.1 published port, best of 3 (MB/s) | ${host_pub[docker]} | ${host_pub[berth]} |"
} | tee "$out/network.md"
fi

# Volume extras (issue 6), same docker CLI against both engines: what 5 named volumes add to
# `run --rm true`, and 1 GiB written (fsync'd) and read back through a named volume and through a bind
# mount, against the host writing the same file to the same filesystem.
if want volumes; then
vol_mib=${BENCH_VOL_MIB:-1024}
bind_dir=$work/bind
mkdir -p "$bind_dir"
# Busybox's dd prints no timing: the snippets time themselves with /proc/uptime (10 ms resolution),
# inside the container, so the engines' start times stay out of it.
timed() { echo "a=\$(cut -d' ' -f1 /proc/uptime); $1 >/dev/null 2>&1; b=\$(cut -d' ' -f1 /proc/uptime); echo \"\$a \$b\" | awk '{print \$2-\$1}'"; }
# The first large write after a delete is slow whoever makes it (2 s against 0.8 s here): one untimed
# round first, so neither the engines nor the host pay for it.
busybox dd if=/dev/zero of="$bind_dir/big" bs=1M count="$vol_mib" conv=fsync 2>/dev/null
rm -f "$bind_dir/big"
# Freed blocks of a deleted file are still being written back for a while; every timed write starts
# from the same quiet state.
settle() { sync; sleep 3; }
# The geometric mean of ratios over pairs in alternating order cancels the order effect.
geomean() { printf '%s\n' "$@" | awk '$1 > 0 {s += log($1); n++} END {if (n) printf "%.2f", exp(s / n); else print "n/a"}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "n/a"}'; }
{
  echo
  echo "| volume metric | docker | berth |"
  echo "|---|---|---|"
  declare -A v0 v5 io
  for e in docker berth; do
    h=${host[$e]}
    vols=()
    for i in 1 2 3 4 5; do vols+=(-v "bench-vol-$i:/v$i"); done
    hyperfine -N -w 3 -r "${BENCH_RUNS:-30}" --export-json "$work/vol-$e.json" \
      "$docker_cli -H $h run --rm busybox true" "$docker_cli -H $h run --rm ${vols[*]} busybox true" >/dev/null 2>&1
    v0[$e]=$(jq '.results[0].median*1000 | .*10 | round / 10' "$work/vol-$e.json")
    v5[$e]=$(jq '.results[1].median*1000 | .*10 | round / 10' "$work/vol-$e.json")
    # I/O: this VM's disk varies 2-3x from one sample to the next, so each container sample is paired
    # with a host sample taken next to it, and the table gives the geometric mean of the pairs' ratios.
    w=$(timed "dd if=/dev/zero of=/d/big bs=1M count=$vol_mib conv=fsync")
    r=$(timed "dd if=/d/big of=/dev/null bs=1M")
    for kind in vol bind; do
      mnt=bench-vol-io:/d
      [ "$kind" = bind ] && mnt=$bind_dir/c:/d
      mkdir -p "$bind_dir/c" "$bind_dir/h"
      wr=() rr=()
      for round in $(seq "${BENCH_VOL_ROUNDS:-4}"); do
        # Whichever writes second in a pair is slower on this disk, so the order alternates.
        host_w() { settle; hw=$(cd "$bind_dir/h" && busybox sh -c "$(timed "busybox dd if=/dev/zero of=big bs=1M count=$vol_mib conv=fsync")"); }
        ctr_w() { settle; cw=$(DOCKER_HOST=$h $docker_cli run --rm -v "$mnt" busybox sh -c "$w"); }
        host_r() { sync; echo 3 >/proc/sys/vm/drop_caches; hr=$(cd "$bind_dir/h" && busybox sh -c "$(timed "busybox dd if=big of=/dev/null bs=1M")"); }
        ctr_r() { sync; echo 3 >/proc/sys/vm/drop_caches; cr=$(DOCKER_HOST=$h $docker_cli run --rm -v "$mnt" busybox sh -c "$r"); }
        if [ $((round % 2)) = 1 ]; then host_w; ctr_w; host_r; ctr_r; else ctr_w; host_w; ctr_r; host_r; fi
        wr+=("$(ratio "$cw" "$hw")")
        rr+=("$(ratio "$cr" "$hr")")
        rm -f "$bind_dir/h/big" "$bind_dir/c/big"
        DOCKER_HOST=$h $docker_cli run --rm -v "$mnt" busybox rm -f /d/big
      done
      io["$e-$kind-w"]=$(geomean "${wr[@]}")
      io["$e-$kind-r"]=$(geomean "${rr[@]}")
      echo "$e $kind write ratios: ${wr[*]}; read ratios: ${rr[*]}" >>"$out/volumes-pairs.txt"
    done
    DOCKER_HOST=$h $docker_cli volume rm bench-vol-io bench-vol-1 bench-vol-2 bench-vol-3 bench-vol-4 bench-vol-5 >/dev/null 2>&1 || true
  done
  n=${BENCH_VOL_ROUNDS:-4}
  echo "| run --rm true: median (ms) | ${v0[docker]} | ${v0[berth]} |"
  echo "| run --rm true with 5 named volumes: median (ms) | ${v5[docker]} | ${v5[berth]} |"
  echo "| write ${vol_mib} MiB + fsync, named volume: container / host time, geometric mean of $n pairs | ${io[docker-vol-w]} | ${io[berth-vol-w]} |"
  echo "| read it back cold, named volume: container / host time | ${io[docker-vol-r]} | ${io[berth-vol-r]} |"
  echo "| write ${vol_mib} MiB + fsync, bind mount: container / host time | ${io[docker-bind-w]} | ${io[berth-bind-w]} |"
  echo "| read it back cold, bind mount: container / host time | ${io[docker-bind-r]} | ${io[berth-bind-r]} |"
} | tee "$out/volumes.md"
fi

# Registry extras (issue 8), same docker CLI against both engines and the same docker-registry: push and
# pull of a 200 MB image in 5 layers (random data, so compression cannot shortcut it), and an image
# dockerd pushed, pulled by berthd and run.
if want registry && command -v docker-registry >/dev/null; then
reg_port=$(for p in $(seq 5600 5999); do [ -z "$(ss -ltnH "sport = :$p")" ] && { echo "$p"; break; }; done)
mkdir -p "$work/registry"
printf 'version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:%s\n' \
  "$work/registry" "$reg_port" >"$work/registry.yml"
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
reg_pid=$!
for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$reg_port/v2/" >/dev/null 2>&1 && break; sleep 0.2; done
reg=127.0.0.1:$reg_port
# One 5-layer image, built once by berthd and loaded into dockerd, so both push the same layers.
ctx=$work/reg-ctx
mkdir -p "$ctx"
printf 'FROM busybox\n' >"$ctx/Dockerfile"
for i in 1 2 3 4 5; do
  head -c $((40 << 20)) /dev/urandom >"$ctx/l$i"
  printf 'COPY l%s /l%s\n' "$i" "$i" >>"$ctx/Dockerfile"
done
DOCKER_HOST=${host[berth]} DOCKER_BUILDKIT=0 $docker_cli build -q -t bench-reg:5l "$ctx" >/dev/null
DOCKER_HOST=${host[berth]} $docker_cli save bench-reg:5l -o "$work/reg5.tar"
DOCKER_HOST=${host[docker]} $docker_cli load -i "$work/reg5.tar" >/dev/null
rm -rf "$ctx" "$work/reg5.tar"
{
  echo
  echo "| registry metric (200 MB, 5 layers, loopback docker-registry) | docker | berth |"
  echo "|---|---|---|"
  declare -A push_s pull_s repush_s
  secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", b - a}'; }
  for e in docker berth; do
    h=${host[$e]}
    ref=$reg/bench/$e:5l
    DOCKER_HOST=$h $docker_cli tag bench-reg:5l "$ref"
    t0=$EPOCHREALTIME; DOCKER_HOST=$h $docker_cli push "$ref" >/dev/null; t1=$EPOCHREALTIME
    push_s[$e]=$(secs "$t0" "$t1")
    t0=$EPOCHREALTIME; DOCKER_HOST=$h $docker_cli push "$ref" >/dev/null; t1=$EPOCHREALTIME
    repush_s[$e]=$(secs "$t0" "$t1")
    DOCKER_HOST=$h $docker_cli rmi "$ref" bench-reg:5l >/dev/null
    # Only busybox stays: every one of the 5 layers comes over the wire.
    sync; sleep 2
    t0=$EPOCHREALTIME; DOCKER_HOST=$h $docker_cli pull "$ref" >/dev/null; t1=$EPOCHREALTIME
    pull_s[$e]=$(secs "$t0" "$t1")
  done
  # Interop: what dockerd pushed (its own gzip), berthd pulls and runs.
  interop=failed
  DOCKER_HOST=${host[berth]} $docker_cli pull "$reg/bench/docker:5l" >/dev/null &&
    DOCKER_HOST=${host[berth]} $docker_cli run --rm "$reg/bench/docker:5l" sh -c 'test -s /l5' && interop=ok
  echo "| push to the registry, cold (s) | ${push_s[docker]} | ${push_s[berth]} |"
  echo "| push again, every blob already there (s) | ${repush_s[docker]} | ${repush_s[berth]} |"
  echo "| pull back after rmi, 5 layers over the wire (s) | ${pull_s[docker]} | ${pull_s[berth]} |"
  echo "| berthd pulls and runs the image dockerd pushed | | $interop |"
  # The same image through Berth's own registry server: both engines pull it, and its blobs are read
  # straight off it with curl (5 x 40 MB).
  breg_log=$work/berth-registry.log
  bin/berth registry serve --addr 127.0.0.1:0 --root "$work/berth-registry" 2>"$breg_log" &
  breg_pid=$!
  for _ in $(seq 50); do grep -q "listening on" "$breg_log" 2>/dev/null && break; sleep 0.1; done
  breg=$(grep -o 'listening on http://[^ ]*' "$breg_log" | head -1 | sed 's#listening on http://##')
  declare -A bpull_s
  bref=$breg/bench/five:5l
  DOCKER_HOST=${host[berth]} $docker_cli tag "$reg/bench/berth:5l" "$bref"
  DOCKER_HOST=${host[berth]} $docker_cli push "$bref" >/dev/null
  for e in docker berth; do
    h=${host[$e]}
    DOCKER_HOST=$h $docker_cli rmi -f "$reg/bench/$e:5l" "$reg/bench/docker:5l" "$bref" >/dev/null 2>&1 || true
    sync; sleep 2
    t0=$EPOCHREALTIME; DOCKER_HOST=$h $docker_cli pull "$bref" >/dev/null; t1=$EPOCHREALTIME
    bpull_s[$e]=$(secs "$t0" "$t1")
    DOCKER_HOST=$h $docker_cli rmi -f "$bref" >/dev/null 2>&1 || true
  done
  # One 200 MB blob uploaded whole, then fetched by curl three times; the best rate counts (curl's own
  # 16 KiB reads are the limit here, not the server).
  head -c 200000000 /dev/urandom >"$work/blob"
  bdig=sha256:$(sha256sum "$work/blob" | cut -d' ' -f1)
  curl -fsS -X POST --data-binary @"$work/blob" -H 'Content-Type: application/octet-stream' \
    "http://$breg/v2/bench/blob/blobs/uploads/?digest=$bdig" >/dev/null
  rm -f "$work/blob"
  best=0
  for _ in 1 2 3; do
    r=$(curl -fsS -o /dev/null -w '%{speed_download}' "http://$breg/v2/bench/blob/blobs/$bdig")
    best=$(awk -v a="$best" -v b="$r" 'BEGIN {print (b > a) ? b : a}')
  done
  gbps=$(awk -v b="$best" 'BEGIN {printf "%.2f", b / 1e9}')
  kill "$breg_pid"; wait "$breg_pid" 2>/dev/null || true
  echo "| pull from berth registry serve, 5 layers (s) | ${bpull_s[docker]} | ${bpull_s[berth]} |"
  echo "| berth registry serve: GET of a 200 MB blob with curl, best of 3 (GB/s) | | $gbps |"
} | tee "$out/registry.md"
kill "$reg_pid"; wait "$reg_pid" 2>/dev/null || true
fi
