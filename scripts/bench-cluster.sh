#!/usr/bin/env bash
# Cross-node benchmarks of the cluster, side by side with a single node of ours and Eclipse Mosquitto, interleaved.
#   scripts/bench-cluster.sh [--runs N] [--scenarios "idle fanin0 fanin1 latency"] [--duration S] [--nodes N]
#                            [--idle-connections N] [--out FILE] [--allow-dirty]
# Targets, in each run and scenario (the order turns each run, so that none always goes first):
#   cluster    --nodes (2-3, default 2) broker processes of ours, Cluster:Enabled, Development membership (node 1's
#              silo the primary), all on loopback; publishers on node A (node 1), subscribers on node B (node 2)
#   ours       one broker process of ours (Cluster:Enabled=false), publishers and subscribers on it
#   mosquitto  Eclipse Mosquitto, publishers and subscribers on it
# Scenarios (iotrealtime-sim, MQTT 3.1.1, 100 B payloads):
#   fanin0   QoS 0 fan-in, 50 publishers -> 1 subscriber, <= 1000 in flight
#   fanin1   QoS 1 fan-in, 50 publishers -> 1 subscriber, <= 500 in flight
#   latency  QoS 1 end-to-end latency, open loop at 5,000 msg/s from 5 publishers to 1 subscriber (p99)
#   idle     broker RSS per idle connection (--idle-connections, default 5,000), held on node A for the cluster
# Routes are eventually consistent: before a cluster run, a route keeper (a persistent QoS 0 session on node B,
# subscribed to bench/# and then disconnected, so node B drops its copies at once) makes node A learn the route, and
# the run starts once node A's /metrics shows it; otherwise the first messages could go nowhere and count as lost.
# CPU and RSS of the cluster are summed over its nodes. Each broker gets a fresh data dir, Store:Durability=None,
# Broker:SysInterval=0; mosquitto: set_tcp_nodelay true, no inflight/queue limits. Results go to
# docs/benchmarks/cluster-<UTC date and time>.txt, a new file per run (--out FILE: there instead, outside
# docs/benchmarks/, for a trial run), headed by command, git describe, machine and load averages; a tree with
# uncommitted changes is refused unless --allow-dirty. Every step is bounded in time; processes are stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bench_name=bench-cluster
. "$root/scripts/lib/bench-common.sh"
bench_args "$@"

runs=3
scenarios="idle fanin0 fanin1 latency"
duration=10
nodes=2
idle_connections=5000
out=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --runs) runs=$2; shift 2 ;;
        --scenarios) scenarios=$2; shift 2 ;;
        --duration) duration=$2; shift 2 ;;
        --nodes) nodes=$2; shift 2 ;;
        --idle-connections) idle_connections=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --allow-dirty) shift ;;
        -h|--help) sed -n 2,24p "$0"; exit 0 ;;
        *) echo "bench-cluster: unknown option '$1' (accepted: --runs, --scenarios, --duration, --nodes, --idle-connections, --out, --allow-dirty)" >&2; exit 2 ;;
    esac
done
for n in runs duration nodes idle_connections; do
    bench_require_positive "${n//_/-}" "${!n}"
done
((nodes >= 2 && nodes <= 3)) || { echo "bench-cluster: --nodes must be 2 or 3 (was $nodes)" >&2; exit 2; }
for s in $scenarios; do
    [[ $s =~ ^(idle|fanin0|fanin1|latency)$ ]] || { echo "bench-cluster: --scenarios takes idle fanin0 fanin1 latency (was '$s')" >&2; exit 2; }
done
if [[ -n $out && $(realpath -m "$out") == "$root/docs/benchmarks/"* ]]; then
    echo "bench-cluster: --out is for trial runs; results under docs/benchmarks/ get a name of their own" >&2
    exit 2
fi
bench_check_tree
command -v curl >/dev/null || { echo "bench-cluster: curl is needed (the nodes' /readyz and /metrics)" >&2; exit 1; }
command -v mosquitto_sub >/dev/null || { echo "bench-cluster: mosquitto_sub is needed (the route keeper; Debian mosquitto-clients)" >&2; exit 1; }
bench_limit_open_files 20000

bench_init_work bench-cluster
bench_build
bench_ensure_mosquitto
if [[ -z $out ]]; then
    bench_results cluster
    out=$bench_out
else
    bench_out=$out
    bench_finished=0
    printf '# %s run started %s; incomplete (the script did not finish)\n' "$bench_command" "$bench_started" >"$out"
fi

sim_args() {
    local d=$duration
    case $1 in
        fanin0) echo "fanin --publishers 50 --qos 0 --payload 100 --inflight 1000 --messages 5000000 --duration $d" ;;
        fanin1) echo "fanin --publishers 50 --qos 1 --payload 100 --inflight 500 --messages 5000000 --duration $d" ;;
        latency) echo "latency --publishers 5 --qos 1 --payload 100 --rate 5000 --messages $((5000 * d)) --duration $((d + 5))" ;;
    esac
}

figure_row() {
    local scenario=$1 json=$2
    case $scenario in
        fanin0|fanin1) jq -r '[.steady_messages_per_second, "msg/s", .received, .lost, .duplicates, (if .stalled then "stalled" elif (.lost == 0 and .duplicates == 0 and .received == .published) then "clean" else "NOT CLEAN" end)] | @tsv' "$json" ;;
        latency) jq -r '[.end_to_end_micros.p99, "us p99", .deliveries, .lost, .duplicates, (if .lost == 0 and .duplicates == 0 and .deliveries == .expected_deliveries then "clean" else "NOT CLEAN" end)] | @tsv' "$json" ;;
    esac
}

ours_args=(--Listeners:BindAddress=127.0.0.1 --Store:Durability=None --Broker:SysInterval=0)

# Starts the target; sets node_pids (every broker process), mqtt_a (publishers'), mqtt_b (subscribers') and http_a.
start_target() {
    local target=$1 dir=$2 i port http silo primary=""
    node_pids=()
    case $target in
        mosquitto)
            mqtt_a=$(free_port); mqtt_b=$mqtt_a
            node_pids+=("$(bench_start_mosquitto "$mqtt_a" "$dir" "max_inflight_messages 0" "max_queued_messages 0" "max_connections -1")")
            pids+=("${node_pids[0]}")
            bench_wait_broker mosquitto "${node_pids[0]}" "$mqtt_a" "$dir"
            ;;
        ours)
            mqtt_a=$(free_port); mqtt_b=$mqtt_a
            mkdir -p "$dir/data"
            dotnet "$broker_dll" --mqtt-port "$mqtt_a" --http-port "$(free_port)" --mqtts-port -1 --https-port -1 \
                "${ours_args[@]}" --Data:Directory="$dir/data" >"$dir/broker.log" 2>&1 &
            node_pids+=("$!")
            pids+=("$!")
            bench_wait_broker ours "${node_pids[0]}" "$mqtt_a" "$dir"
            ;;
        cluster)
            for ((i = 1; i <= nodes; i++)); do
                port=$(free_port); http=$(free_port); silo=$(free_port)
                while [[ $http == "$port" ]]; do http=$(free_port); done
                while [[ $silo == "$port" || $silo == "$http" ]]; do silo=$(free_port); done
                mkdir -p "$dir/node-$i/data"
                dotnet "$broker_dll" --mqtt-port "$port" --http-port "$http" --mqtts-port -1 --https-port -1 \
                    "${ours_args[@]}" --Data:Directory="$dir/node-$i/data" \
                    --Cluster:Enabled=true --Cluster:NodeId="node-$i" --Cluster:Membership=Development \
                    --Cluster:SiloPort="$silo" ${primary:+--Cluster:PrimaryEndpoint=$primary} >"$dir/node-$i/broker.log" 2>&1 &
                node_pids+=("$!")
                pids+=("$!")
                [[ -n $primary ]] || primary=127.0.0.1:$silo
                ((i == 1)) && { mqtt_a=$port; http_a=$http; }
                ((i == 2)) && mqtt_b=$port
                bench_wait_broker "cluster node-$i" "$!" "$port" "$dir/node-$i"
                wait_ready "node-$i" "$http" "$dir/node-$i"
                echo "   node-$i: pid ${node_pids[i - 1]}, mqtt $port, http $http, silo $silo"
            done
            ;;
    esac
}

# Waits (60 s at most) until GET /readyz answers 200: the node has joined the cluster.
wait_ready() {
    local name=$1 http=$2 dir=$3
    for _ in $(seq 1 600); do
        curl -fsS -o /dev/null "http://127.0.0.1:$http/readyz" 2>/dev/null && return 0
        sleep 0.1
    done
    tail -20 "$dir/broker.log"
    echo "bench-cluster: $name not ready within 60 s" >&2
    exit 1
}

# The route keeper: a persistent QoS 0 session on node B subscribed to bench/#, disconnected at once (-E); then waits
# (30 s at most) until node A's /metrics counts a remote route.
keep_route() {
    local dir=$1 routes
    timeout 20 mosquitto_sub -h 127.0.0.1 -p "$mqtt_b" -i bench-route-keeper -c -q 0 -t 'bench/#' -E >"$dir/route-keeper.log" 2>&1 \
        || { cat "$dir/route-keeper.log"; echo "bench-cluster: the route keeper could not subscribe on node B" >&2; exit 1; }
    for _ in $(seq 1 300); do
        routes=$(curl -fsS "http://127.0.0.1:$http_a/metrics" 2>/dev/null | awk '$1 == "iotrealtime_cluster_remote_routes" { print $2 }')
        [[ -n $routes ]] && ((routes >= 1)) && return 0
        sleep 0.1
    done
    echo "bench-cluster: node A did not learn node B's route within 30 s" >&2
    exit 1
}

stop_target() {
    local pid
    for pid in "${node_pids[@]}"; do stop_pid "$pid"; done
}

sum_cpu_ticks() { local t=0 pid; for pid in "${node_pids[@]}"; do t=$((t + $(cpu_ticks "$pid"))); done; echo "$t"; }
sum_rss_kb() { local t=0 pid; for pid in "${node_pids[@]}"; do t=$((t + $(rss_kb "$pid"))); done; echo "$t"; }

# Samples node A's RSS every 2 s until three consecutive readings are within 1% (or 256 KB); 60 s at most.
stable_rss_kb() {
    local pid=$1 prev cur stable=0 diff
    prev=$(rss_kb "$pid")
    for _ in $(seq 1 30); do
        sleep 2
        cur=$(rss_kb "$pid")
        diff=$((cur > prev ? cur - prev : prev - cur))
        if (( diff * 100 <= prev || diff <= 256 )); then stable=$((stable + 1)); else stable=0; fi
        prev=$cur
        if (( stable >= 2 )); then echo "$cur"; return 0; fi
    done
    echo "bench-cluster: RSS of $pid did not stabilise within 60 s; using the last reading" >&2
    echo "$cur"
}

# Idle connections on node A (the only node for ours and mosquitto); appends a row to $idle_results.
run_idle() {
    local run=$1 target=$2 dir=$3 at_rest loaded held per_conn sim_pid ramp_limit
    at_rest=$(stable_rss_kb "${node_pids[0]}")
    dotnet "$sim_dll" idle --host 127.0.0.1 --port "$mqtt_a" --connections "$idle_connections" --rate 2000 \
        --hold 300 --keepalive 300 --client-id-pattern "idle-{0}" --json "$dir/sim.json" >"$dir/sim.log" 2>&1 &
    sim_pid=$!
    pids+=("$sim_pid")
    ramp_limit=$((idle_connections / 2000 + 60))
    for _ in $(seq 1 $((ramp_limit * 10))); do
        grep -q '^HOLDING' "$dir/sim.log" && break
        kill -0 "$sim_pid" 2>/dev/null || break
        sleep 0.1
    done
    grep -q '^HOLDING' "$dir/sim.log" || { tail -20 "$dir/sim.log"; echo "bench-cluster: idle ramp did not finish within $ramp_limit s" >&2; exit 1; }
    loaded=$(stable_rss_kb "${node_pids[0]}")
    held=$(ss -Htn state established "( src 127.0.0.1 and sport = :$mqtt_a )" | wc -l)
    stop_pid "$sim_pid"
    ((held > 0)) || { echo "bench-cluster: no idle connections held on $target" >&2; exit 1; }
    per_conn=$(awk -v l="$loaded" -v b="$at_rest" -v n="$held" 'BEGIN { printf "%.2f", (l - b) / n }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$run" "$target" "$held" "$at_rest" "$loaded" "$per_conn" >>"$idle_results"
    echo "   held $held, at rest $at_rest KB, loaded $loaded KB, $per_conn KB/connection"
}

results=$work/results.tsv
idle_results=$work/idle.tsv
: >"$results"
: >"$idle_results"
targets=(cluster ours mosquitto)
for run in $(seq 1 "$runs"); do
    for scenario in $scenarios; do
        # each run starts with the next target, so that none always goes first
        order=("${targets[@]:$(((run - 1) % 3))}" "${targets[@]:0:$(((run - 1) % 3))}")
        for target in "${order[@]}"; do
            dir=$work/$run-$scenario-$target
            mkdir -p "$dir"
            load=$(cut -d' ' -f1 /proc/loadavg)
            echo "== run $run, $scenario: $target (load average $(cut -d' ' -f1-3 /proc/loadavg))"
            start_target "$target" "$dir"
            if [[ $scenario == idle ]]; then
                run_idle "$run" "$target" "$dir"
                stop_target
                sleep 3 # let TIME_WAIT and the kernel's socket memory settle between runs
                continue
            fi
            [[ $target == cluster ]] && keep_route "$dir"
            sleep 1
            cpu_before=$(sum_cpu_ticks)
            sim_rc=0
            # shellcheck disable=SC2046 # the arguments are words on purpose
            timeout $((duration + 90)) dotnet "$sim_dll" $(sim_args "$scenario") --host 127.0.0.1 --port "$mqtt_a" \
                --subscriber-port "$mqtt_b" --json "$dir/sim.json" >"$dir/sim.log" 2>&1 || sim_rc=$?
            cpu_after=$(sum_cpu_ticks)
            rss=$(sum_rss_kb)
            stop_target
            grep -vE '^\[' "$dir/sim.log" | tail -6 | sed 's/^/    /'
            [[ -s $dir/sim.json ]] || { echo "bench-cluster: simulator wrote no report (exit $sim_rc); log in $dir/sim.log" >&2; exit 1; }
            cpu_s=$(awk -v t="$((cpu_after - cpu_before))" -v tps="$ticks_per_second" 'BEGIN { printf "%.2f", t / tps }')
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$run" "$scenario" "$target" "$(figure_row "$scenario" "$dir/sim.json")" "$rss" "$cpu_s" "$load" >>"$results"
            sleep 2 # let TIME_WAIT and the page cache settle between runs
        done
    done
done

{
    bench_header "Cluster benchmarks: cross-node ($nodes-node cluster, publishers on node A, subscribers on node B) next to one node of ours and Mosquitto, interleaved"
    echo "# cluster: $nodes nodes of ours, Cluster:Enabled=true, Development membership, loopback; route keeper on node B (persistent QoS 0 session on bench/#, offline)"
    echo "# ours and cluster nodes: ${ours_args[*]}, fresh data dir; mosquitto: ${bench_mosquitto_base[*]}, max_inflight_messages 0, max_queued_messages 0"
    echo "# rates: at the subscriber, 10-90 % of the deliveries; RSS: summed over the target's broker processes after the run; cpu: summed utime+stime"
    for s in $scenarios; do
        [[ $s == idle ]] && { echo "#   idle: iotrealtime-sim idle --connections $idle_connections --rate 2000 --keepalive 300 on node A; KB per connection = (loaded - at rest) / held"; continue; }
        echo "#   $s: iotrealtime-sim $(sim_args "$s") (cluster: --port node A --subscriber-port node B)"
    done
    echo
    python3 - "$results" "$idle_results" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
idle = [l.rstrip("\n").split("\t") for l in open(sys.argv[2]) if l.strip()]
targets = ["cluster", "ours", "mosquitto"]
if idle:
    print("idle: broker RSS per idle connection (node A for the cluster)")
    print(f"{'run':<4} {'broker':<10} {'held':>7} {'at rest KB':>11} {'loaded KB':>10} {'KB/conn':>8}")
    for r in idle:
        print(f"{r[0]:<4} {r[1]:<10} {r[2]:>7} {r[3]:>11} {r[4]:>10} {r[5]:>8}")
    for t in targets:
        v = [float(r[5]) for r in idle if r[1] == t]
        if v: print(f"  median {t:<10} {statistics.median(v):.2f} KB/connection")
    print()
if rows:
    # run scenario target figure unit deliveries lost dup result rss_kb cpu_s load
    print(f"{'run':<4} {'scenario':<8} {'broker':<10} {'figure':>12} {'unit':<8} {'deliveries':>11} {'lost':>8} {'dup':>4} {'RSS MB':>8} {'cpu s':>7} {'cpu s/M':>8} {'load':>5}  result")
    for r in rows:
        d = float(r[5])
        cpm = float(r[10]) / (d / 1e6) if d > 0 else float("nan")
        print(f"{r[0]:<4} {r[1]:<8} {r[2]:<10} {float(r[3]):>12.1f} {r[4]:<8} {r[5]:>11} {r[6]:>8} {r[7]:>4} {int(r[9]) / 1024:>8.1f} {float(r[10]):>7.2f} {cpm:>8.2f} {r[11]:>5}  {r[8]}")
    print()
    print("medians (min-max); cluster/ours and ours/mosquitto")
    for s in dict.fromkeys(r[1] for r in rows):
        med = {}
        for t in targets:
            v = [float(r[3]) for r in rows if r[1] == s and r[2] == t]
            if not v: continue
            med[t] = statistics.median(v)
            unit = next(r[4] for r in rows if r[1] == s)
            print(f"  {s:<8} {t:<10} {med[t]:>12.1f} {unit} ({min(v):.1f}-{max(v):.1f})")
        if med.get("ours") and "cluster" in med: print(f"  {s:<8} cluster/ours {med['cluster'] / med['ours']:.3f}")
        if med.get("mosquitto") and "ours" in med: print(f"  {s:<8} ours/mosquitto {med['ours'] / med['mosquitto']:.3f}")
PY
} >"$out"
bench_finish
echo "bench-cluster: results in $out"
