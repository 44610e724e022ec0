#!/usr/bin/env bash
# The benchmark suite: every row of the broker's targets, ours next to Eclipse Mosquitto, interleaved in one run.
#   scripts/bench.sh [--runs N] [--scenarios "idle fanin0 fanout fanin1 latency connect burst0 fleet1"] [--duration S]
#                    [--fleet-duration S] [--idle-connections N] [--baseline REV] [--allow-dirty]
# Scenarios (iotrealtime-sim, MQTT 3.1.1, 100 B payloads, closed loops unless said otherwise):
#   idle     scripts/bench-idle.sh: broker RSS per idle connection, 15,000 held (--idle-connections N: N instead)
#   fanin0   QoS 0 fan-in, 50 publishers -> 1 subscriber, <= 1000 in flight (also: broker CPU s per million QoS 0 msgs)
#   fanout   QoS 0 fan-out, 1 publisher -> 1000 subscribers, <= 100 messages (100,000 deliveries) in flight
#   fanin1   QoS 1 fan-in, 50 publishers -> 1 subscriber, <= 500 in flight
#   latency  QoS 1 end-to-end latency, open loop at 5,000 msg/s from 5 publishers to 1 subscriber
#   connect  connect storm: 15,000 connections at 1,000/s, connect latency
#   burst0   QoS 0 burst, 50 publishers -> 1 subscriber, each publisher up to 1,000 messages ahead of the newest of its
#            own the subscriber has had (a lost message does not hold the window); sent, received, lost (%)
#   fleet1   QoS 1 fleet with churn: 2,000 devices (MQTT client library) publishing QoS 1 at 3,900 msg/s in all, one
#            backend subscriber on devices/+/telemetry, 500 short-lived connections per second beside them, for
#            --fleet-duration s (default 100); lost, duplicated, end-to-end p50/p90/p99, broker RSS every 5 s
#   p2p      QoS 1, 50 publisher/subscriber pairs, <= 1000 in flight (not in the default list)
#   shared   QoS 1, 50 publishers -> $share/g/bench/# with 10 consumers, <= 1000 in flight (not in the default list)
#   burst0s  burst0 with ours' queue budget cut to 1 MiB (Broker:MaxQueuedBytes), overflow policy DropOldest: what a
#            subscriber that falls behind loses (not in the default list)
#   burst0bp burst0s with Broker:QueueOverflowPolicy=Backpressure: publishers are held back instead (not in the
#            default list; a --baseline from before the policy existed cannot run it)
# Each run, each scenario, ours then mosquitto: start the broker on a free loopback port (ours: Store:Durability=None,
# Broker:SysInterval=0, fresh data dir, its defaults otherwise; mosquitto: set_tcp_nodelay true, no inflight/queue
# limits), run the simulator, read the broker's CPU time (utime+stime, /proc/PID/stat) before and after and its VmRSS
# after, stop it. Results go to docs/benchmarks/suite-<UTC date and time>.txt, a new file per run; a tree with
# uncommitted changes is refused unless --allow-dirty. Every step is bounded in time; processes are stopped by PID.
# --baseline REV (before/after): also builds git revision REV of our broker (Release, in a git worktree of its own under
# the work dir, removed at exit) and runs it as a third broker, ours@<short rev>, with ours' arguments, in every run
# and scenario, idle included: ours then ours@<rev> on odd runs, ours@<rev> then ours on even runs, mosquitto last.
# The results record git describe of REV and, per scenario, the ratio after/before (ours / ours@<rev>) of the median
# figure (idle: of KB per connection) and whether it is within 5 % (no more than 5 % slower, or higher in latency/RSS).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bench_name=bench
. "$root/scripts/lib/bench-common.sh"
bench_args "$@"

runs=3
scenarios="idle fanin0 fanout fanin1 latency connect burst0 fleet1"
duration=10
fleet_duration=100
idle_connections=15000
baseline_rev=""
baseline_name=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --runs) runs=$2; shift 2 ;;
        --scenarios) scenarios=$2; shift 2 ;;
        --duration) duration=$2; shift 2 ;;
        --fleet-duration) fleet_duration=$2; shift 2 ;;
        --idle-connections) idle_connections=$2; shift 2 ;;
        --baseline) baseline_rev=$2; shift 2 ;;
        --allow-dirty) shift ;;
        -h|--help) sed -n 2,28p "$0"; exit 0 ;;
        *) echo "bench: unknown option '$1' (accepted: --runs, --scenarios, --duration, --fleet-duration, --idle-connections, --baseline, --allow-dirty)" >&2; exit 2 ;;
    esac
done
for n in runs duration fleet_duration idle_connections; do
    bench_require_positive "${n//_/-}" "${!n}"
done
for s in $scenarios; do
    [[ $s =~ ^(idle|fanin0|fanout|fanin1|latency|connect|burst0|fleet1|p2p|shared|burst0s|burst0bp)$ ]] \
        || { echo "bench: --scenarios takes idle fanin0 fanout fanin1 latency connect burst0 fleet1 p2p shared burst0s burst0bp (was '$s')" >&2; exit 2; }
done
bench_check_tree
# A wrong revision is refused before anything is built.
[[ -z $baseline_rev ]] || bench_baseline_names "$baseline_rev"

# At most 20,000 open files for every process started from here (15,000 connections need about 15,100).
bench_limit_open_files 20000

bench_init_work bench-suite
bench_build
[[ -z $baseline_rev ]] || bench_build_baseline "$baseline_rev"
bench_ensure_mosquitto
bench_results suite

start_broker() {
    local target=$1 port=$2 dir=$3
    case $target in
        mosquitto)
            # No per-client inflight or queue limits, so mosquitto never drops what the closed loop lets through.
            bench_start_mosquitto "$port" "$dir" "max_inflight_messages 0" "max_queued_messages 0"
            ;;
        ours|ours@*)
            # The baseline gets exactly ours' arguments, from its own build.
            # shellcheck disable=SC2046 # the scenario's settings are words on purpose
            bench_start_dll "$([[ $target == ours ]] && echo "$broker_dll" || echo "$baseline_dll")" "$port" "$dir" \
                --Listeners:BindAddress=127.0.0.1 --Data:Directory="$dir/data" --Store:Durability=None --Broker:SysInterval=0 \
                $(ours_scenario_args "$scenario")
            ;;
    esac
}

# Settings of ours (and the baseline) that a scenario exists to measure.
ours_scenario_args() {
    case $1 in
        burst0s) echo "--Broker:MaxQueuedBytes=1048576" ;;
        burst0bp) echo "--Broker:MaxQueuedBytes=1048576 --Broker:QueueOverflowPolicy=Backpressure" ;;
    esac
}

# The simulator's arguments for each scenario; the simulator bounds itself by --messages and --duration.
sim_args() {
    local d=$duration
    case $1 in
        fanin0) echo "fanin --publishers 50 --qos 0 --payload 100 --inflight 1000 --messages 5000000 --duration $d" ;;
        fanin1) echo "fanin --publishers 50 --qos 1 --payload 100 --inflight 500 --messages 5000000 --duration $d" ;;
        fanout) echo "fanout --subscribers 1000 --qos 0 --payload 100 --inflight 100 --messages 20000 --duration $d" ;;
        latency) echo "latency --publishers 5 --qos 1 --payload 100 --rate 5000 --messages $((5000 * d)) --duration $((d + 5))" ;;
        connect) echo "connect --connections 15000 --rate 1000 --hold 0 --keepalive 300 --connect-timeout 10" ;;
        burst0|burst0s|burst0bp) echo "fanin --publishers 50 --qos 0 --payload 100 --ahead 1000 --messages 20000000 --duration $d" ;;
        # 3,900 msg/s from 2,000 devices: one publish per device every 2000/3900 s.
        fleet1) echo "run --devices 2000 --interval 0.5128 --jitter 0.05 --qos 1 --payload-size 100 --verify --churn-rate 500 --connect-rate 1000 --duration $fleet_duration --no-progress --mode mqttnet" ;;
        p2p) echo "p2p --publishers 50 --qos 1 --payload 100 --inflight 1000 --messages 5000000 --duration $d" ;;
        shared) echo "shared --publishers 50 --subscribers 10 --qos 1 --payload 100 --inflight 1000 --messages 5000000 --duration $d" ;;
    esac
}

# One TSV row from the simulator's JSON: figure, unit, deliveries (for CPU per million), loss, dup, result.
figure_row() {
    local scenario=$1 json=$2
    case $scenario in
        burst0|burst0s|burst0bp) jq -r '[.steady_messages_per_second, "msg/s", .received, .lost, .duplicates, (if .stalled then "stalled" elif .lost == 0 and .duplicates == 0 then "clean" else "lost \(.lost_percent) %" end)] | @tsv' "$json" ;;
        fleet1) jq -r '[.end_to_end_latency.p90_ms, "ms e2e p90", .published, .lost, .duplicates, (if .lost == 0 and .duplicates == 0 and .connected == .devices then "clean" else "NOT CLEAN" end)] | @tsv' "$json" ;;
        fanin0|fanin1) jq -r '[.steady_messages_per_second, "msg/s", .received, .lost, .duplicates, (if .stalled then "stalled" elif (.lost == 0 and .duplicates == 0 and .received == .published) then "clean" else "NOT CLEAN" end)] | @tsv' "$json" ;;
        fanout|p2p|shared) jq -r '[.steady_deliveries_per_second, "deliveries/s", .deliveries, .lost, .duplicates, (if .stalled then "stalled" elif (.lost == 0 and .duplicates == 0 and .deliveries == .expected_deliveries) then "clean" else "NOT CLEAN" end)] | @tsv' "$json" ;;
        latency) jq -r '[.end_to_end_micros.p99, "us p99", .deliveries, .lost, .duplicates, (if .lost == 0 and .duplicates == 0 and .deliveries == .expected_deliveries then "clean" else "NOT CLEAN" end)] | @tsv' "$json" ;;
        connect) jq -r '[.connect_latency.p99_ms, "ms p99", .connected, (.requested - .connected), 0, ((if .connected == .requested then "clean" else "\(.requested - .connected) failed" end) + ", ramp \(.ramp_seconds) s")] | @tsv' "$json" ;;
    esac
}

# The loss columns of burst0 and fleet1 (published, received, lost, lost %, duplicates, e2e p50/p90/p99 ms, connects).
loss_row() {
    local scenario=$1 json=$2
    case $scenario in
        burst0|burst0s|burst0bp) jq -r '[.published, .received, .lost, .lost_percent, .duplicates, .end_to_end_latency.p50_ms, .end_to_end_latency.p90_ms, .end_to_end_latency.p99_ms, "-"] | @tsv' "$json" ;;
        fleet1) jq -r '[.published, .received, .lost, (if .published > 0 then (.lost * 100000 / .published | round / 1000) else 0 end), .duplicates, .end_to_end_latency.p50_ms, .end_to_end_latency.p90_ms, .end_to_end_latency.p99_ms,
                        "devices \(.connected)/\(.devices), churn \(.churn_connected)/\(.churn_attempts) connected (p99 \(.churn_latency.p99_ms) ms)"] | @tsv' "$json" ;;
    esac
}

if [[ " $scenarios " == *" idle "* ]]; then
    idle_args=(--runs "$runs" --connections "$idle_connections" --out "$work/idle.txt")
    [[ -n $baseline_rev ]] && idle_args+=(--baseline "$baseline_rev" --baseline-dll "$baseline_dll")
    ((bench_allow_dirty)) && idle_args+=(--allow-dirty)
    echo "== idle (scripts/bench-idle.sh ${idle_args[*]})"
    scripts/bench-idle.sh "${idle_args[@]}" | grep -E '^(==|   held)' || true
    [[ -s $work/idle.txt ]] || { echo "bench: bench-idle.sh wrote no results" >&2; exit 1; }
fi

results=$work/results.tsv
losses=$work/losses.tsv
rss_curves=$work/rss.tsv
: >"$results"
: >"$losses"
: >"$rss_curves"
for run in $(seq 1 "$runs"); do
    for scenario in $scenarios; do
        [[ $scenario == idle ]] && continue
        for target in $(bench_run_order "$run" ours mosquitto); do
            dir=$work/$run-$scenario-$target
            mkdir -p "$dir"
            port=$(free_port)
            load=$(cut -d' ' -f1 /proc/loadavg)
            echo "== run $run, $scenario: $target on 127.0.0.1:$port (load average $(cut -d' ' -f1-3 /proc/loadavg))"
            broker_pid=$(start_broker "$target" "$port" "$dir")
            pids+=("$broker_pid")
            bench_wait_broker "$target" "$broker_pid" "$port" "$dir"
            sleep 1
            cpu_before=$(cpu_ticks "$broker_pid")
            sim_rc=0
            limit=$((duration + 90))
            [[ $scenario == fleet1 ]] && limit=$((fleet_duration + 90))
            sampler=
            if [[ $scenario == fleet1 ]]; then
                # Broker RSS every 5 s while the fleet runs (bounded by the run's time limit).
                ( for ((t = 0; t <= limit; t += 5)); do kill -0 "$broker_pid" 2>/dev/null || break; echo "$t $(rss_kb "$broker_pid")"; sleep 5; done ) >"$dir/rss.txt" 2>/dev/null &
                sampler=$!
                pids+=("$sampler")
            fi
            # shellcheck disable=SC2046 # the arguments are words on purpose
            timeout "$limit" dotnet "$sim_dll" $(sim_args "$scenario") --host 127.0.0.1 --port "$port" \
                --json "$dir/sim.json" >"$dir/sim.log" 2>&1 || sim_rc=$?
            cpu_after=$(cpu_ticks "$broker_pid")
            rss=$(rss_kb "$broker_pid")
            if [[ -n $sampler ]]; then
                kill "$sampler" 2>/dev/null || true
                wait "$sampler" 2>/dev/null || true
                printf '%s\t%s\t%s\t%s\n' "$run" "$scenario" "$target" "$(awk '{ printf "%s%.0f", (NR > 1 ? " " : ""), $2 / 1024 }' "$dir/rss.txt")" >>"$rss_curves"
            fi
            stop_pid "$broker_pid"
            grep -vE '^\[' "$dir/sim.log" | tail -8 | sed 's/^/    /'
            if [[ ! -s $dir/sim.json ]]; then
                echo "bench: simulator wrote no report (exit $sim_rc); log in $dir/sim.log" >&2
                exit 1
            fi
            row=$(figure_row "$scenario" "$dir/sim.json")
            cpu_s=$(awk -v t="$((cpu_after - cpu_before))" -v tps="$ticks_per_second" 'BEGIN { printf "%.2f", t / tps }')
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$run" "$scenario" "$target" "$row" "$rss" "$cpu_s" "$load" >>"$results"
            if [[ $scenario == burst0* || $scenario == fleet1 ]]; then
                printf '%s\t%s\t%s\t%s\n' "$run" "$scenario" "$target" "$(loss_row "$scenario" "$dir/sim.json")" >>"$losses"
            fi
            sleep 2 # let TIME_WAIT and the page cache settle between runs
        done
    done
done

out=$bench_out
{
    bench_header "Benchmark suite, ours next to Mosquitto, interleaved"
    echo "# ours: --Store:Durability=None --Broker:SysInterval=0, fresh data dir, defaults otherwise; mosquitto: ${bench_mosquitto_base[*]}, max_inflight_messages 0, max_queued_messages 0"
    echo "# rates: at the subscribers, 10-90 % of the deliveries; RSS: broker VmRSS after the run; cpu: broker utime+stime per million deliveries"
    echo "#   (fleet1: per million messages published, the churn's connects included); load: 1-minute load average as each broker started"
    for s in $scenarios; do
        [[ $s == idle ]] && continue
        extra=$(ours_scenario_args "$s")
        echo "#   $s: iotrealtime-sim $(sim_args "$s")${extra:+; ours also $extra}"
    done
    echo
    if [[ -s $work/idle.txt ]]; then
        grep -v '^#' "$work/idle.txt"
        echo
    fi
    python3 - "$results" "$work/idle.txt" "$losses" "$rss_curves" "$baseline_name" "$idle_connections" <<'PY'
import os, statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
losses = [l.rstrip("\n").split("\t") for l in open(sys.argv[3]) if l.strip()]
curves = [l.rstrip("\n").split("\t") for l in open(sys.argv[4]) if l.strip()]
base = sys.argv[5]  # ours@<short rev> with --baseline, else empty
idle_n = int(sys.argv[6])
brokers = ["ours"] + ([base] if base else []) + ["mosquitto"]
bw = max(10, len(base))
# run scenario target figure unit deliveries lost dup result rss_kb cpu_s load
print(f"{'run':<4} {'scenario':<8} {'broker':<{bw}} {'figure':>12} {'unit':<13} {'deliveries':>11} {'lost':>8} {'dup':>4} {'RSS MB':>8} {'cpu s':>7} {'cpu s/M':>8} {'load':>5}  result")
def cpu_per_m(r):
    d = float(r[5])
    return float(r[10]) / (d / 1e6) if d > 0 else float("nan")
for r in rows:
    print(f"{r[0]:<4} {r[1]:<8} {r[2]:<{bw}} {float(r[3]):>12.1f} {r[4]:<13} {r[5]:>11} {r[6]:>8} {r[7]:>4} {int(r[9]) / 1024:>8.1f} {float(r[10]):>7.2f} {cpu_per_m(r):>8.2f} {r[11]:>5}  {r[8]}")
print()
if losses:
    # run scenario target published received lost lost% dup p50 p90 p99 note
    print("loss (burst0*: QoS 0, fleet1: acknowledged QoS 1 at the backend subscriber), end-to-end latency in ms")
    print(f"{'run':<4} {'scenario':<8} {'broker':<{bw}} {'sent':>10} {'received':>10} {'lost':>9} {'lost %':>8} {'dup':>5} {'e2e p50':>9} {'e2e p90':>9} {'e2e p99':>9}  notes")
    for r in losses:
        print(f"{r[0]:<4} {r[1]:<8} {r[2]:<{bw}} {r[3]:>10} {r[4]:>10} {r[5]:>9} {float(r[6]):>8.3f} {r[7]:>5} {float(r[8]):>9.1f} {float(r[9]):>9.1f} {float(r[10]):>9.1f}  {r[11] if r[11] != '-' else ''}")
    print()
if curves:
    print("broker RSS over time (MB, every 5 s from the start of the load)")
    for r in curves:
        print(f"  run {r[0]} {r[1]} {r[2]:<{bw}} {r[3]}")
    print()
med = {}
print("medians (min-max) and ratio ours/mosquitto")
for s in dict.fromkeys(r[1] for r in rows):
    for t in brokers:
        sel = [r for r in rows if r[1] == s and r[2] == t]
        if not sel: continue
        fig = [float(r[3]) for r in sel]; rss = [int(r[9]) / 1024 for r in sel]; cpu = [cpu_per_m(r) for r in sel]
        med[(s, t)] = (statistics.median(fig), statistics.median(rss), statistics.median(cpu))
        print(f"  {s:<8} {t:<{bw}} {med[(s, t)][0]:>12.1f} {sel[0][4]:<13} ({min(fig):.1f}-{max(fig):.1f}), RSS {med[(s, t)][1]:.1f} MB ({min(rss):.1f}-{max(rss):.1f}), "
              f"cpu {med[(s, t)][2]:.2f} s/M ({min(cpu):.2f}-{max(cpu):.2f}), {sum(r[8].startswith('clean') for r in sel)}/{len(sel)} clean")
    if (s, "ours") in med and (s, "mosquitto") in med:
        o, m = med[(s, "ours")], med[(s, "mosquitto")]
        print(f"  {s:<8} {'ratio':<{bw}} figure {o[0] / m[0]:.2f}, RSS {o[1] / m[1]:.2f}, cpu/M {o[2] / m[2]:.2f}")
print()
idle = {}
if os.path.exists(sys.argv[2]):
    for line in open(sys.argv[2]):
        p = line.split()
        if len(p) >= 3 and p[0] == "median": idle[p[1]] = float(p[2])
targets = []
def target(name, ours, mosq, unit, ok, goal):
    if ours is None or mosq is None: return
    targets.append((name, ours, mosq, unit, ours / mosq if mosq else float("nan"), ok, goal))
if idle: target(f"RSS per idle connection, {idle_n:,} held", idle.get("ours"), idle.get("mosquitto"), "KB", idle.get("ours", 99) <= 2, "<= 2 KB")
g = lambda s, i=0, t="ours": med[(s, t)][i] if (s, t) in med else None
if g("fanin0"): target("QoS 0 fan-in 50 -> 1", g("fanin0"), g("fanin0", 0, "mosquitto"), "msg/s", g("fanin0") >= 1.2 * g("fanin0", 0, "mosquitto"), ">= 1.2x")
if g("fanout"): target("QoS 0 fan-out 1 -> 1000", g("fanout"), g("fanout", 0, "mosquitto"), "deliveries/s", g("fanout") >= 1.2 * g("fanout", 0, "mosquitto"), ">= 1.2x")
if g("fanin1"): target("QoS 1 fan-in 50 -> 1", g("fanin1"), g("fanin1", 0, "mosquitto"), "msg/s", g("fanin1") >= 1.2 * g("fanin1", 0, "mosquitto"), ">= 1.2x")
if g("latency"): target("QoS 1 e2e p99 at 5,000 msg/s", g("latency"), g("latency", 0, "mosquitto"), "us", g("latency") <= g("latency", 0, "mosquitto"), "<= mosquitto")
if g("fanin0"): target("broker CPU s per M QoS 0 msgs", g("fanin0", 2), g("fanin0", 2, "mosquitto"), "s", g("fanin0", 2) <= g("fanin0", 2, "mosquitto"), "<= mosquitto")
if g("connect"): target("connect p99, 15,000 at 1,000/s", g("connect"), g("connect", 0, "mosquitto"), "ms", g("connect") <= 2 * g("connect", 0, "mosquitto"), "<= 2x mosquitto")
print("targets (medians)")
for name, o, m, unit, ratio, ok, goal in targets:
    print(f"  {name:<38} ours {o:>12.2f} {unit:<13} mosquitto {m:>12.2f}  ratio {ratio:>6.2f}  target {goal:<15} {'met' if ok else 'NOT met'}")
closed = [r for r in rows if r[1] not in ("latency", "connect", "burst0", "burst0s", "burst0bp", "fleet1")]
print(f"  zero loss in closed-loop runs: {sum(r[8] == 'clean' for r in closed)}/{len(closed)} clean")
for s in ("burst0", "burst0s", "burst0bp", "fleet1"):
    for t in brokers:
        sel = [r for r in losses if r[1] == s and r[2] == t]
        if sel:
            pct = [float(r[6]) for r in sel]
            print(f"  {s} {t:<{bw}} lost {statistics.median(pct):.3f} % median ({min(pct):.3f}-{max(pct):.3f}), {sum(int(r[5]) == 0 and int(r[7]) == 0 for r in sel)}/{len(sel)} runs without loss or duplicates")
if base:
    # Rates: a regression is a lower figure; latency and memory: a higher one. Within 5 % unless 5 % worse than before.
    print()
    print(f"after/before: ours / {base} (medians; within 5 % = no more than 5 % worse, in the figure's direction)")
    def before_after(name, after, before, unit, higher_better, extra=""):
        if after is None or before is None or before == 0: return
        ratio = after / before
        ok = ratio >= 0.95 if higher_better else ratio <= 1.05
        print(f"  {name:<28} after {after:>12.2f} {unit:<13} before {before:>12.2f}  after/before {ratio:>6.3f} ({'higher' if higher_better else 'lower'} is better)  "
              f"{'within 5 %' if ok else 'NOT within 5 %'}{extra}")
    if "ours" in idle and base in idle:
        before_after(f"idle, {idle_n:,} held", idle["ours"], idle[base], "KB/conn", False)
    for s in dict.fromkeys(r[1] for r in rows):
        if (s, "ours") not in med or (s, base) not in med: continue
        unit = next(r[4] for r in rows if r[1] == s)
        o, b = med[(s, "ours")], med[(s, base)]
        extra = f"; RSS {o[1] / b[1]:.3f}, cpu/M {o[2] / b[2]:.3f}" if b[1] and b[2] == b[2] and b[2] else ""
        before_after(s, o[0], b[0], unit, unit.endswith("/s"), extra)
PY
} >"$out"
bench_finish
echo
cat "$out"
echo "written to ${out#"$root"/}; logs in $work"
