#!/bin/bash
# Swarm-mode numbers: leader failover time (kill -9 of the leader → another manager accepts a write) and
# a manager's idle memory against a plain berthd. Three managers and one plain berthd, each in its own
# network namespace on a bridge this script creates (no address on the host side); everything is removed
# on exit. Usage (root): bench/cluster.sh [rounds]   → bench-out/cluster.md
set -euo pipefail
ROUNDS=${1:-${BENCH_CLUSTER_ROUNDS:-5}}
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
ID=$$
TMP=$(mktemp -d /tmp/berth-clbench-XXXX)
BR=bclb$((ID % 100000))
NET=10.$((200 + ID % 50)).$(((ID / 50) % 250))
OUT=bench-out/cluster.md
mkdir -p bench-out
DOCKER=${DOCKER:-/usr/local/bin/docker}
declare -A PID

cleanup() {
	set +e
	for n in "${!PID[@]}"; do kill -9 "${PID[$n]}" 2>/dev/null; done
	sleep 0.3
	# The monitors the daemons started carry their exec root on the command line.
	for p in /proc/[0-9]*; do
		if tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -q "$TMP"; then kill -9 "${p#/proc/}" 2>/dev/null; fi
	done
	for i in 0 1 2 3; do ip netns del "clb$ID-$i" 2>/dev/null; ip link del "vclb$ID$i" 2>/dev/null; done
	ip link del "$BR" 2>/dev/null
	grep " $TMP" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT

CGO_ENABLED=1 go build -tags netgo,osusergo -ldflags "-s -w -extldflags -static" -o "$TMP/berthd" ./cmd/berthd
CGO_ENABLED=1 go build -tags netgo,osusergo -ldflags "-s -w -extldflags -static" -o "$TMP/berth-init" ./cmd/berth-init

ip link add "$BR" type bridge
ip link set "$BR" up
start() { # start i name
	local i=$1 name=$2
	ip netns exec "clb$ID-$i" unshare -u sh -c 'hostname "$0" && exec "$@"' "$name" "$TMP/berthd" \
		--data-root "$TMP/$name/data" --exec-root "$TMP/$name/exec" >>"$TMP/$name.log" 2>&1 &
	PID[$name]=$!
	until d "$name" version >/dev/null 2>&1; do sleep 0.05; done
}
d() { local n=$1; shift; "$DOCKER" -H "unix://$TMP/$n/exec/berth.sock" "$@"; }
rss() { awk '/VmRSS/ {print $2}' "/proc/${PID[$1]}/status"; }
names=(m0 m1 m2 plain)
for i in 0 1 2 3; do
	ip netns add "clb$ID-$i"
	ip link add "vclb$ID$i" type veth peer name eth0 netns "clb$ID-$i"
	ip link set "vclb$ID$i" master "$BR" up
	ip -n "clb$ID-$i" addr add "$NET.$((10 + i))/24" dev eth0
	ip -n "clb$ID-$i" link set eth0 up
	ip -n "clb$ID-$i" link set lo up
	mkdir -p "$TMP/${names[$i]}"
	start "$i" "${names[$i]}"
done
d m0 swarm init --advertise-addr "$NET.10" >/dev/null
tok=$(d m0 swarm join-token -q manager)
d m1 swarm join --token "$tok" "$NET.10" >/dev/null
d m2 swarm join --token "$tok" "$NET.10" >/dev/null
sleep 10 # idle
declare -A RSS
for n in m0 m1 m2 plain; do RSS[$n]=$(rss "$n"); done

leader() { d "$1" node ls --format '{{.Hostname}} {{.ManagerStatus}}' | awk '$2=="Leader" {print $1}'; }
times=()
catchup=()
for r in $(seq 1 "$ROUNDS"); do
	l=$(leader m0 2>/dev/null || leader m1)
	other=m0
	[ "$l" = m0 ] && other=m1
	t0=$(date +%s%N)
	kill -9 "${PID[$l]}"
	until d "$other" node update --label-add "round=$r" "$other" >/dev/null 2>&1; do sleep 0.01; done
	t1=$(date +%s%N)
	times+=($(((t1 - t0) / 1000000)))
	i=${l#m}
	start "$i" "$l"
	t2=$(date +%s%N)
	until [ "$(d "$l" node inspect "$other" --format '{{index .Spec.Labels "round"}}' 2>/dev/null)" = "$r" ]; do sleep 0.05; done
	catchup+=($((($(date +%s%N) - t2) / 1000000)))
	until d "$other" node ls --format '{{.Hostname}} {{.Status}}' | grep -q "^$l Ready"; do sleep 0.1; done
done
sorted=$(printf '%s\n' "${times[@]}" | sort -n)
median=$(echo "$sorted" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
max=$(echo "$sorted" | tail -1)
{
	echo "| swarm mode (3 managers, one netns each) | value |"
	echo "|---|---|"
	echo "| leader failover, kill -9 → write accepted (median of $ROUNDS) | ${median} ms (max ${max} ms; all: ${times[*]}) |"
	echo "| killed manager restarted → serves the write made while it was down | ${catchup[*]} ms |"
	echo "| plain berthd RSS, idle | $((RSS[plain] / 1024)) MiB |"
	echo "| manager RSS, idle (m0 m1 m2) | $((RSS[m0] / 1024)) / $((RSS[m1] / 1024)) / $((RSS[m2] / 1024)) MiB |"
	echo "| largest manager − plain berthd | $(( ( $(printf '%s\n' "${RSS[m0]}" "${RSS[m1]}" "${RSS[m2]}" | sort -n | tail -1) - RSS[plain]) / 1024 )) MiB |"
} | tee "$OUT"
