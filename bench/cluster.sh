#!/bin/bash
# Swarm-mode numbers: leader failover time (kill -9 of the leader → another manager accepts a write) and
# a manager's idle memory against a plain berthd. Three managers and one plain berthd, each in its own
# network namespace on a bridge this script creates (no address on the host side); everything is removed
# on exit. Usage (root): bench/cluster.sh [rounds]   → bench-out/cluster.md
#
# Then, unless BENCH_CLUSTER_SWARM=0, one-node swarm mode side by side with a reference dockerd (Debian's
# docker.io), each engine in a network namespace of its own on the same bridge, through the stock docker
# CLI: 20 replicas up and removed, and an overlay network with a service VIP, a task address and the
# routing mesh (a published port reached from a third namespace). BENCH_CLUSTER_SWARM=berth leaves dockerd
# out. Rounds: BENCH_CLUSTER_SWARM_ROUNDS (20 replicas, default 5), BENCH_CLUSTER_NET_ROUNDS (overlay,
# default 3); a probe gives up after BENCH_CLUSTER_PROBE_S seconds (default 30).
set -euo pipefail
ROUNDS=${1:-${BENCH_CLUSTER_ROUNDS:-5}}
SWARM=${BENCH_CLUSTER_SWARM:-1}
SROUNDS=${BENCH_CLUSTER_SWARM_ROUNDS:-5}
NROUNDS=${BENCH_CLUSTER_NET_ROUNDS:-3}
PROBE_S=${BENCH_CLUSTER_PROBE_S:-30}
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
ID=$$
TMP=$(mktemp -d /tmp/berth-clbench-XXXX)
BR=bclb$((ID % 100000))
NET=10.$((200 + ID % 50)).$(((ID / 50) % 250))
OUT=bench-out/cluster.md
mkdir -p bench-out
DOCKER=${DOCKER:-/usr/local/bin/docker}
# The CLI's own config (contexts, cli-plugins state) stays out of /root/.docker.
export DOCKER_CONFIG=$TMP/docker-config
DREF_CG=clbench$ID # dockerd's containers' cgroup parent, removed on exit
declare -A PID
had_unified_berth=""
if [ -d /sys/fs/cgroup/unified/berth ]; then had_unified_berth=1; fi
had_run_containerd=""
if [ -d /run/containerd ]; then had_run_containerd=1; fi
# dockerd writes a few things outside its roots: its trust key, a plugin socket directory, and the
# hosts/resolv.conf of its networks' load-balancer sandboxes (lb_<network ID>).
declare -A had_path=()
for f in /etc/docker/key.json /run/docker /var/lib/docker; do
	if [ -e "$f" ]; then had_path[$f]=1; fi
done
DREF_NETS=() # IDs of the reference dockerd's networks

# cgroup_kill DIR...: kills what runs in these cgroups (every hierarchy) and removes them, children first.
cgroup_kill() {
	local rel c
	for rel in "$@"; do
		for c in /sys/fs/cgroup/*/"$rel" /sys/fs/cgroup/"$rel"; do
			[ -d "$c" ] || continue
			# shellcheck disable=SC2038 # pids, not file names
			find "$c" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -9 2>/dev/null
		done
	done
	sleep 0.2
	for rel in "$@"; do
		for c in /sys/fs/cgroup/*/"$rel" /sys/fs/cgroup/"$rel"; do
			[ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null
		done
	done
	return 0
}

cleanup() {
	set +e
	disown -a # the daemons are killed below: no "Killed" notices from bash
	# The reference dockerd first, politely: it takes its swarm's ingress sandbox and containerd down.
	if [ -n "${PID[dref]:-}" ] && kill -0 "${PID[dref]}" 2>/dev/null; then
		dk swarm leave --force >/dev/null 2>&1
		kill "${PID[dref]}"
		for _ in $(seq 300); do kill -0 "${PID[dref]}" 2>/dev/null || break; sleep 0.1; done
	fi
	for n in "${!PID[@]}"; do kill -9 "${PID[$n]}" 2>/dev/null; done
	sleep 0.3
	# The monitors the daemons started (and dockerd's containerd and shims) carry their roots on the
	# command line.
	for p in /proc/[0-9]*; do
		if tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -q "$TMP"; then kill -9 "${p#/proc/}" 2>/dev/null; fi
	done
	# Task containers outlive their berthd by design: kill them through their cgroups (berthd's under
	# berth/<id>, dockerd's under its own parent), then remove those.
	local ids=()
	for c in "$TMP"/*/data/containers/* "$TMP"/*/exec/containers/*; do
		[ -d "$c" ] && ids+=("berth/${c##*/}")
	done
	cgroup_kill "${ids[@]}" "$DREF_CG"
	[ -z "$had_unified_berth" ] && rmdir /sys/fs/cgroup/unified/berth 2>/dev/null
	for i in 0 1 2 3 4 5 6; do ip netns del "clb$ID-$i" 2>/dev/null; ip link del "vclb$ID$i" 2>/dev/null; done
	ip link del "$BR" 2>/dev/null
	grep " $TMP" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
	# containerd's shims put their sockets under /run/containerd/s whatever its root is.
	[ -z "$had_run_containerd" ] && [ -d /run/containerd ] && find /run/containerd -depth -type d -empty -delete 2>/dev/null
	if [ -n "${PID[dref]:-}" ]; then
		for n in "${DREF_NETS[@]}"; do rm -rf "/var/lib/docker/network/files/lb_$n"; done
		[ -z "${had_path[/etc/docker/key.json]:-}" ] && rm -f /etc/docker/key.json
		for f in /run/docker /var/lib/docker; do
			[ -z "${had_path[$f]:-}" ] && [ -d "$f" ] && find "$f" -depth -type d -empty -delete 2>/dev/null
		done
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT

CGO_ENABLED=1 go build -tags netgo,osusergo -ldflags "-s -w -extldflags -static" -o "$TMP/berthd" ./cmd/berthd
CGO_ENABLED=1 go build -tags netgo,osusergo -ldflags "-s -w -extldflags -static" -o "$TMP/berth-init" ./cmd/berth-init

ip link add "$BR" type bridge
ip link set "$BR" up
netns() { # netns i: a namespace on the bridge at $NET.(10+i)
	local i=$1
	ip netns add "clb$ID-$i"
	ip link add "vclb$ID$i" type veth peer name eth0 netns "clb$ID-$i"
	ip link set "vclb$ID$i" master "$BR" up
	ip -n "clb$ID-$i" addr add "$NET.$((10 + i))/24" dev eth0
	ip -n "clb$ID-$i" link set eth0 up
	ip -n "clb$ID-$i" link set lo up
}
start() { # start i name
	local i=$1 name=$2
	# ip netns exec mounts a fresh /sys without the cgroup tree: cgroup2 again there, for task containers.
	# shellcheck disable=SC2016 # for that sh
	ip netns exec "clb$ID-$i" unshare -u sh -c \
		'{ mountpoint -q /sys/fs/cgroup || mount -t cgroup2 cgroup2 /sys/fs/cgroup; } && hostname "$0" && exec "$@"' \
		"$name" "$TMP/berthd" --data-root "$TMP/$name/data" --exec-root "$TMP/$name/exec" >>"$TMP/$name.log" 2>&1 &
	PID[$name]=$!
	until d "$name" version >/dev/null 2>&1; do sleep 0.05; done
}
d() { local n=$1; shift; "$DOCKER" -H "unix://$TMP/$n/exec/berth.sock" "$@"; }
dk() { "$DOCKER" -H "unix://$TMP/dref.sock" "$@"; }
rss() { awk '/VmRSS/ {print $2}' "/proc/${PID[$1]}/status"; }
names=(m0 m1 m2 plain)
for i in 0 1 2 3; do
	netns "$i"
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

[ "$SWARM" = 0 ] && exit 0

# ---- One-node swarm mode, berthd and a reference dockerd side by side ----
# The failover cluster goes first, so that its heartbeats do not run under these numbers.
for n in m0 m1 m2 plain; do kill "${PID[$n]}" 2>/dev/null || true; done
for n in m0 m1 m2 plain; do
	for _ in $(seq 100); do kill -0 "${PID[$n]}" 2>/dev/null || break; sleep 0.1; done
	unset "PID[$n]"
done

engines=(berth)
declare -A skip=() # engine/part → why it is not measured
if [ "$SWARM" = berth ]; then
	skip[docker]="not run (BENCH_CLUSTER_SWARM=berth)"
elif ! command -v dockerd >/dev/null; then
	skip[docker]="n/a: no dockerd (apt-get install docker.io)"
else
	engines+=(docker)
fi
# e ENGINE docker-args...: the stock CLI against the one-node berthd (sw) or the reference dockerd.
e() { local en=$1; shift; if [ "$en" = berth ]; then d sw "$@"; else dk "$@"; fi; }
declare -A nodeip=([berth]=$NET.14 [docker]=$NET.15)
CNS=clb$ID-6 # the routing mesh's client side: a namespace with nothing else in it
netns 4
netns 5
netns 6
scripts/busybox-rootfs.sh >"$TMP/busybox.tar"
mkdir -p "$TMP/sw" "$DOCKER_CONFIG"
start 4 sw
if [[ " ${engines[*]} " == *" docker "* ]]; then
	mkdir -p "$TMP/dref"
	echo '{}' >"$TMP/dref/daemon.json"
	# In its own network namespace (its bridges, iptables tables, ingress and VXLAN stay in there) but in
	# the host's mount namespace, where the cgroup v1 hierarchies are, as a dockerd normally runs. There is
	# no Docker Hub: with DOCKER_SERVICE_PREFER_OFFLINE_IMAGE a task's image is not pulled again.
	DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 nsenter --net="/run/netns/clb$ID-5" dockerd \
		--config-file "$TMP/dref/daemon.json" --data-root "$TMP/dref/data" --exec-root "$TMP/dref/exec" \
		-H "unix://$TMP/dref.sock" --pidfile "$TMP/dref/dockerd.pid" --cgroup-parent "$DREF_CG" \
		>"$TMP/dref.log" 2>&1 &
	PID[dref]=$!
	for _ in $(seq 600); do dk version >/dev/null 2>&1 && break; sleep 0.1; done
	dk version >/dev/null 2>&1 || { tail -20 "$TMP/dref.log" >&2; echo "cluster: dockerd did not start" >&2; exit 1; }
fi
for en in "${engines[@]}"; do
	e "$en" import "$TMP/busybox.tar" busybox:latest >/dev/null
	e "$en" swarm init --advertise-addr "${nodeip[$en]}" >/dev/null
done
if [ -n "${PID[dref]:-}" ]; then
	while read -r n; do DREF_NETS+=("$n"); done < <(dk network ls -q --no-trunc --filter driver=overlay)
fi
dref_version=$(dk version --format '{{.Server.Version}}' 2>/dev/null || echo "?")

uptime_s() { cut -d' ' -f1 /proc/uptime; }
ms_between() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%d", (b - a) * 1000}'; }
now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }
# gone ENGINE SERVICE...: waits until no container of these services is left (running or not).
gone() {
	local en=$1 s t0 left
	shift
	t0=$(now_ms)
	while :; do
		left=0
		for s in "$@"; do
			if [ -n "$(e "$en" ps -aq --filter "label=com.docker.swarm.service.name=$s" 2>/dev/null || echo error)" ]; then left=1; fi
		done
		if [ "$left" = 0 ]; then return 0; fi
		if [ $(($(now_ms) - t0)) -gt 120000 ]; then return 1; fi
		sleep 0.1
	done
}
declare -A R # engine/metric → space-separated samples (ms, or "fail")
add() { R[$1/$2]="${R[$1/$2]:-}${R[$1/$2]:+ }$3"; }

# 1. 20 replicas: create returned → 20/20 running; rm → every task container gone. The tasks run
# `sleep 1d`, which as PID 1 ignores SIGTERM: a 1 s stop grace period rather than the default 10 s, so
# the engines' own work shows rather than a 10 s floor under both.
replicas_round() {
	local en=$1 t0 ok=fail
	e "$en" service create -d --no-resolve-image --name r20 --replicas 20 --stop-grace-period 1s \
		busybox sleep 1d >/dev/null
	t0=$(now_ms)
	while [ $(($(now_ms) - t0)) -lt 120000 ]; do
		if e "$en" service ls --filter name=r20 --format '{{.Replicas}}' 2>/dev/null | grep -q '^20/20'; then
			ok=$(($(now_ms) - t0))
			break
		fi
		sleep 0.1
	done
	add "$en" up20 "$ok"
	t0=$(now_ms)
	e "$en" service rm r20 >/dev/null
	if gone "$en" r20; then add "$en" rm20 $(($(now_ms) - t0)); else add "$en" rm20 fail; fi
}
for r in $(seq 1 "$SROUNDS"); do
	order=("${engines[@]}")
	if [ $((r % 2)) = 0 ]; then order=(); for ((k = ${#engines[@]} - 1; k >= 0; k--)); do order+=("${engines[k]}"); done; fi
	for en in "${order[@]}"; do replicas_round "$en"; sleep 2; done
done

# 2-3. Overlay: web (busybox httpd, 2 replicas, published on 8080: the routing mesh) and client
# (sleep) on one overlay network, both created at t0. Three probes run at once, each starting a request
# every 100 ms (busybox wget under `timeout 2`: its own -T crashes) until one succeeds, stamped with
# /proc/uptime where it succeeded (10 ms resolution; the same clock inside the containers): through the
# VIP and to a web task's own address, both from inside the client task (which they wait for), and to
# the node's address on 8080 from a namespace with nothing else in it.
# shellcheck disable=SC2016 # expanded by the container's shell
PROBE='url=$1 m=$2 lim=$(($3 * 10)) n=0
rm -f "$m"
while [ ! -s "$m" ] && [ $n -lt $lim ]; do
	(timeout 2 $4 wget -qO- "$url" && cut -d" " -f1 /proc/uptime >>"$m") </dev/null >/dev/null 2>&1 &
	$4 usleep 100000
	n=$((n + 1))
done
if [ -s "$m" ]; then head -n 1 "$m"; else echo fail; fi'
# shellcheck disable=SC2016
LOOP='a=$(cut -d" " -f1 /proc/uptime)
for i in $($2 seq 50); do $2 wget -qO- "$1" >/dev/null || exit 1; done
b=$(cut -d" " -f1 /proc/uptime)
echo "$a $b"'
WEBCMD='mkdir -p /www && echo ok >/www/index.html && exec httpd -f -p 8080 -h /www'
for en in "${engines[@]}"; do
	e "$en" network create -d overlay benchnet >/dev/null
done
if [ -n "${PID[dref]:-}" ]; then DREF_NETS+=("$(dk network inspect benchnet --format '{{.ID}}')"); fi
first_running() { { e "$1" ps -q --filter "label=com.docker.swarm.service.name=$2" --filter status=running || true; } | head -n 1; }
overlay_round() {
	local en=$1 t0 lim t_end netid subnet vip="" cid="" wid="" taskip="" p
	netid=$(e "$en" network inspect benchnet --format '{{.ID}}')
	subnet=$(e "$en" network inspect benchnet --format '{{range .IPAM.Config}}{{.Subnet}}{{end}}')
	t0=$(uptime_s)
	e "$en" service create -d --no-resolve-image --name web --replicas 2 --network benchnet -p 8080:8080 \
		--stop-grace-period 1s busybox sh -c "$WEBCMD" >/dev/null
	e "$en" service create -d --no-resolve-image --name client --network benchnet --stop-grace-period 1s \
		busybox sleep 1d >/dev/null
	rm -f "$TMP/$en.mesh" "$TMP/$en.vip" "$TMP/$en.task"
	local probes=()
	if [ -z "${skip[$en/mesh]:-}" ]; then
		nsenter --net="/run/netns/$CNS" /bin/busybox sh -c "$PROBE" sh "http://${nodeip[$en]}:8080/" "$TMP/mesh.$en" \
			"$PROBE_S" /bin/busybox >"$TMP/$en.mesh" 2>/dev/null &
		probes+=($!)
	fi
	lim=$(($(now_ms) + PROBE_S * 1000))
	while [ "$(now_ms)" -lt "$lim" ]; do
		# web's VIP on benchnet (by network ID, or by benchnet's subnet).
		if [ -z "$vip" ]; then
			vip=$({ e "$en" service inspect web --format \
				'{{range .Endpoint.VirtualIPs}}{{.NetworkID}} {{.Addr}}{{"\n"}}{{end}}' 2>/dev/null || true; } |
				awk -v n="$netid" -v p="${subnet%.*}." '$1 == n || index($2, p) == 1 {sub("/.*", "", $2); print $2; exit}')
		fi
		if [ -z "$cid" ]; then cid=$(first_running "$en" client); fi
		if [ -z "$wid" ]; then wid=$(first_running "$en" web); fi
		if [ -n "$wid" ] && [ -z "$taskip" ]; then
			taskip=$({ e "$en" inspect "$wid" --format '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' 2>/dev/null || true; } |
				tr ' ' '\n' | grep -F "${subnet%.*}." | head -n 1 || true)
		fi
		if [ -n "$vip" ] && [ -n "$cid" ] && [ -n "$taskip" ]; then break; fi
		sleep 0.05
	done
	if [ -n "$cid" ] && [ -n "$vip" ] && [ -z "${skip[$en/vip]:-}" ]; then
		e "$en" exec "$cid" sh -c "$PROBE" sh "http://$vip:8080/" /tmp/probe.vip "$PROBE_S" >"$TMP/$en.vip" 2>/dev/null &
		probes+=($!)
	fi
	if [ -n "$cid" ] && [ -n "$taskip" ]; then
		e "$en" exec "$cid" sh -c "$PROBE" sh "http://$taskip:8080/" /tmp/probe.task "$PROBE_S" >"$TMP/$en.task" 2>/dev/null &
		probes+=($!)
	fi
	# Only the probes: the daemons are this shell's background jobs too.
	for p in "${probes[@]}"; do wait "$p" || true; done
	for p in vip task mesh; do
		if [ -n "${skip[$en/$p]:-}" ]; then continue; fi
		t_end=$(cat "$TMP/$en.$p" 2>/dev/null || true)
		if [[ "$t_end" =~ ^[0-9.]+$ ]]; then
			add "$en" "$p" "$(ms_between "$t0" "$t_end")"
		else
			add "$en" "$p" fail
			continue
		fi
		# 50 sequential requests, timed where they are made.
		local ab=""
		case $p in
		vip | task)
			local url=http://$vip:8080/
			[ "$p" = task ] && url=http://$taskip:8080/
			ab=$(timeout 120 "$DOCKER" -H "$(e_host "$en")" exec "$cid" sh -c "$LOOP" sh "$url" 2>/dev/null || true)
			;;
		mesh)
			local a b
			a=$EPOCHREALTIME
			if timeout 120 nsenter --net="/run/netns/$CNS" /bin/busybox sh -c "$LOOP" sh \
				"http://${nodeip[$en]}:8080/" /bin/busybox >/dev/null 2>&1; then
				b=$EPOCHREALTIME
				ab="$a $b"
			fi
			;;
		esac
		if [[ "$ab" =~ ^([0-9.]+)\ ([0-9.]+)$ ]]; then
			add "$en" "${p}50" "$(ms_between "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}")"
		else
			add "$en" "${p}50" fail
		fi
	done
	{
		echo "== $en, round $r: vip=$vip task=$taskip"
		e "$en" service ps web client --no-trunc --format '{{.Name}} {{.DesiredState}} {{.CurrentState}} {{.Error}}' || true
	} >>"$TMP/tasks.log" 2>&1
	e "$en" service rm web client >/dev/null
	gone "$en" web client || true
}
e_host() { if [ "$1" = berth ]; then echo "unix://$TMP/sw/exec/berth.sock"; else echo "unix://$TMP/dref.sock"; fi; }
# A probe that never succeeded is not tried again on that engine: its reason goes in the table.
noipvs() { ! grep -qw ip_vs /proc/modules 2>/dev/null && [ ! -e /proc/net/ip_vs ]; }
why() {
	local why="n/a: no request succeeded within ${PROBE_S} s" said
	if [ "$1" = docker ] && noipvs; then
		said=$(grep -o 'Could not get ipvs family information from the kernel' "$TMP/dref.log" | head -n 1 || true)
		why="n/a: this kernel has no IPVS (CONFIG_IP_VS unset, no modules), which dockerd's VIPs and routing mesh use${said:+ (dockerd: \"$said\")}; no request succeeded within ${PROBE_S} s"
	fi
	echo "$why"
}
for r in $(seq 1 "$NROUNDS"); do
	order=("${engines[@]}")
	if [ $((r % 2)) = 0 ]; then order=(); for ((k = ${#engines[@]} - 1; k >= 0; k--)); do order+=("${engines[k]}"); done; fi
	for en in "${order[@]}"; do
		overlay_round "$en"
		for p in vip task mesh; do
			if [ -n "${R[$en/$p]:-}" ] && [ -z "${skip[$en/$p]:-}" ] && [[ ! "${R[$en/$p]}" =~ [0-9] ]]; then
				skip[$en/$p]=$(why "$en")
			fi
		done
		sleep 2
	done
done
for en in "${engines[@]}"; do
	for _ in $(seq 100); do e "$en" network rm benchnet >/dev/null 2>&1 && break; sleep 0.2; done
done

# cell ENGINE METRIC [per]: the median of the samples (ms), all of them after it; with per, ms per
# request of the 50.
cell() {
	local en=$1 m=$2 per=${3:-}
	if [ -n "${skip[$en]:-}" ]; then echo "${skip[$en]}"; return; fi
	local base=${m%50}
	if [ -n "${skip[$en/$base]:-}" ]; then echo "${skip[$en/$base]}"; return; fi
	local s=${R[$en/$m]:-}
	[ -z "$s" ] && { echo "n/a"; return; }
	local nums med
	nums=$(tr ' ' '\n' <<<"$s" | grep -E '^[0-9]+$' | sort -n || true)
	if [ -z "$nums" ]; then echo "failed ($s)"; return; fi
	med=$(awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}' <<<"$nums")
	if [ -n "$per" ]; then
		awk -v m="$med" -v s="$s" 'BEGIN {printf "%.1f ms/request (50 in %d ms; all: %s)", m / 50, m, s}'
	else
		echo "$med ms (all: $s)"
	fi
}
{
	echo
	echo "| swarm mode, one node, side by side (stock docker CLI; median, all samples in order) | dockerd $dref_version | berthd |"
	echo "|---|---|---|"
	echo "| service create --replicas 20 returned → 20/20 running ($SROUNDS rounds) | $(cell docker up20) | $(cell berth up20) |"
	echo "| service rm → all 20 task containers gone (stop grace 1 s) | $(cell docker rm20) | $(cell berth rm20) |"
	echo "| overlay: web + client created → client task reaches web through the VIP ($NROUNDS rounds) | $(cell docker vip) | $(cell berth vip) |"
	echo "| overlay: same, client task → a web task's own address | $(cell docker task) | $(cell berth task) |"
	echo "| overlay: 50 sequential wget through the VIP, inside the client task | $(cell docker vip50 per) | $(cell berth vip50 per) |"
	echo "| overlay: 50 sequential wget to a task's address, inside the client task | $(cell docker task50 per) | $(cell berth task50 per) |"
	echo "| routing mesh: web created → node:8080 answers another netns | $(cell docker mesh) | $(cell berth mesh) |"
	echo "| routing mesh: 50 sequential wget to node:8080 from another netns | $(cell docker mesh50 per) | $(cell berth mesh50 per) |"
} | tee -a "$OUT"
cp "$TMP/dref.log" bench-out/cluster-dockerd.log 2>/dev/null || true
cp "$TMP/sw.log" bench-out/cluster-berthd.log 2>/dev/null || true
cp "$TMP/tasks.log" bench-out/cluster-tasks.log 2>/dev/null || true
