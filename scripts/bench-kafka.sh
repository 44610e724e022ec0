#!/usr/bin/env bash
# QoS 1 fan-in with Kafka forwarding off, async and durable, side by side in one run, with Eclipse Mosquitto's QoS 1
# fan-in as the reference row.
#   scripts/bench-kafka.sh [--runs N] [--duration S] [--publishers N] [--inflight N] [--modes "off async durable mosquitto"]
#                          [--kafka-args "--Kafka:LingerMs=1 ..."]   (extra broker arguments for the async and durable runs)
#                          [--allow-dirty]
# Kafka is librdkafka's mock cluster, started as a process of its own for each Kafka run
# (dotnet tests/Broker.Benchmarks kafka-mock: a real Kafka-protocol server on loopback, in memory) with topic bench
# (6 partitions); the broker forwards every message to it (Kafka:DefaultTopic=bench, key = client id). Each run, each
# mode in turn: start the broker (and mock cluster) on free loopback ports, run the same bounded
# `iotrealtime-sim fanin --qos 1` load, read the broker's CPU time and Kafka counters (/metrics), stop everything by
# PID. Prints msg/s, ratios to forwarding off and to mosquitto, and writes docs/benchmarks/kafka-<UTC date and time>.txt,
# a new file per run (experiments with --kafka-args included); a tree with uncommitted changes is refused unless
# --allow-dirty. The mosquitto row is a reference taken in the same run: compare it only within one results file
# (docs/benchmarks.md, "Mosquitto's QoS 1 fan-in across runs").
# Targets: async costs <= 15 % of the no-forwarding rate; durable keeps >= 50 % of it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bench_name=bench-kafka
. "$root/scripts/lib/bench-common.sh"
bench_args "$@"

runs=3
duration=10
publishers=50
inflight=500
modes="off async durable mosquitto"
kafka_args=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --runs) runs=$2; shift 2 ;;
        --duration) duration=$2; shift 2 ;;
        --publishers) publishers=$2; shift 2 ;;
        --inflight) inflight=$2; shift 2 ;;
        --modes) modes=$2; shift 2 ;;
        --kafka-args) kafka_args=$2; shift 2 ;;
        --allow-dirty) shift ;;
        -h|--help) sed -n 2,16p "$0"; exit 0 ;;
        *) echo "bench-kafka: unknown option '$1' (accepted: --runs, --duration, --publishers, --inflight, --modes, --kafka-args, --allow-dirty)" >&2; exit 2 ;;
    esac
done
for n in runs duration publishers inflight; do
    bench_require_positive "$n" "${!n}"
done
for m in $modes; do
    [[ $m =~ ^(off|async|durable|mosquitto)$ ]] || { echo "bench-kafka: --modes takes off async durable mosquitto (was '$m')" >&2; exit 2; }
done
[[ -z $kafka_args || $kafka_args =~ ^(--Kafka:[A-Za-z]+=[^ ]+ ?)+$ ]] || { echo "bench-kafka: --kafka-args takes --Kafka:Key=value words (was '$kafka_args')" >&2; exit 2; }
bench_check_tree

bench_init_work bench-kafka
bench_build
dotnet build tests/Broker.Benchmarks -c Release -o "$root/artifacts/bench/kafka-mock" --nologo -v q >"$work/build-kafka-mock.log" 2>&1 \
    || { tail -30 "$work/build-kafka-mock.log"; echo "bench-kafka: kafka-mock build failed" >&2; exit 1; }
mock_dll=$root/artifacts/bench/kafka-mock/IotRealtime.Broker.Benchmarks.dll
bench_ensure_mosquitto
bench_results kafka

sim_args="fanin --publishers $publishers --qos 1 --payload 100 --inflight $inflight --messages 5000000 --duration $duration"

# Starts the mock cluster for one run (fresh, so no run pays for the records of the one before); sets mock_pid, bootstrap.
start_mock() {
    local dir=$1
    dotnet "$mock_dll" kafka-mock --topics bench:6 --max-seconds $((duration + 300)) >"$dir/kafka-mock.log" 2>&1 &
    mock_pid=$!
    pids+=("$mock_pid")
    bootstrap=
    for _ in $(seq 1 300); do
        bootstrap=$(sed -n 's/^bootstrap=//p' "$dir/kafka-mock.log")
        [[ -n $bootstrap ]] && return 0
        kill -0 "$mock_pid" 2>/dev/null || break
        sleep 0.1
    done
    tail -20 "$dir/kafka-mock.log"
    echo "bench-kafka: the mock cluster did not start" >&2
    exit 1
}

# One Kafka counter from the broker's /metrics, summed over rules.
kafka_metric() { curl -fsS "http://127.0.0.1:$2/metrics" | awk -v m="$1" '$1 ~ "^"m"[{ ]" || $1 == m { s += $NF } END { printf "%d", s }'; }

results=$work/results.tsv
: >"$results"
for run in $(seq 1 "$runs"); do
    for mode in $modes; do
        dir=$work/$run-$mode
        mkdir -p "$dir"
        port=$(free_port)
        http_port=$(free_port)
        mock_pid=
        load=$(cut -d' ' -f1 /proc/loadavg)
        echo "== run $run, $mode on 127.0.0.1:$port (load average $(cut -d' ' -f1-3 /proc/loadavg))"
        case $mode in
            mosquitto)
                broker_pid=$(bench_start_mosquitto "$port" "$dir" "max_inflight_messages 0" "max_queued_messages 0") ;;
            off)
                broker_pid=$(bench_start_ours "$port" "$dir" --Listeners:BindAddress=127.0.0.1 --Data:Directory="$dir/data" \
                    --Store:Durability=None --Broker:SysInterval=0 --Listeners:HttpPort="$http_port") ;;
            async|durable)
                start_mock "$dir"
                kafka_mode=$([[ $mode == async ]] && echo Async || echo Durable)
                broker_pid=$(bench_start_ours "$port" "$dir" --Listeners:BindAddress=127.0.0.1 --Data:Directory="$dir/data" \
                    --Store:Durability=None --Broker:SysInterval=0 --Listeners:HttpPort="$http_port" \
                    --Kafka:BootstrapServers="$bootstrap" --Kafka:DefaultTopic=bench --Kafka:DefaultMode="$kafka_mode" $kafka_args) ;;
        esac
        pids+=("$broker_pid")
        bench_wait_broker "$mode" "$broker_pid" "$port" "$dir"
        sleep 1
        cpu_before=$(cpu_ticks "$broker_pid")
        sim_rc=0
        # shellcheck disable=SC2086 # the arguments are words on purpose
        timeout $((duration + 90)) dotnet "$sim_dll" $sim_args --host 127.0.0.1 --port "$port" \
            --json "$dir/sim.json" >"$dir/sim.log" 2>&1 || sim_rc=$?
        cpu_after=$(cpu_ticks "$broker_pid")
        rss=$(rss_kb "$broker_pid")
        forwarded=- dropped=- failed=-
        if [[ -n $mock_pid ]]; then
            # async: what the buffer still holds reaches Kafka after the load; wait for it (bounded), then count
            for _ in $(seq 1 300); do
                [[ $(kafka_metric iotrealtime_kafka_buffered "$http_port") == 0 ]] && break
                sleep 0.1
            done
            forwarded=$(kafka_metric iotrealtime_kafka_forwarded_total "$http_port")
            dropped=$(kafka_metric iotrealtime_kafka_dropped_total "$http_port")
            failed=$(kafka_metric iotrealtime_kafka_failed_total "$http_port")
        fi
        stop_pid "$broker_pid"
        [[ -n $mock_pid ]] && stop_pid "$mock_pid"
        grep -vE '^\[' "$dir/sim.log" | tail -7 | sed 's/^/    /'
        [[ -s $dir/sim.json ]] || { echo "bench-kafka: simulator wrote no report (exit $sim_rc); log in $dir/sim.log" >&2; exit 1; }
        row=$(jq -r '[.steady_messages_per_second, .published, .acked, .received, .lost, .duplicates, (if .stalled then "stalled" elif (.lost == 0 and .duplicates == 0 and .received == .published and .acked == .published) then "clean" else "NOT CLEAN" end)] | @tsv' "$dir/sim.json")
        cpu_s=$(awk -v t="$((cpu_after - cpu_before))" -v tps="$ticks_per_second" 'BEGIN { printf "%.2f", t / tps }')
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$run" "$mode" "$row" "$cpu_s" "$forwarded" "$dropped" "$failed" "$rss" "$load" >>"$results"
        sleep 2 # let TIME_WAIT settle between runs
    done
done

out=$bench_out
{
    bench_header "Kafka forwarding cost: QoS 1 fan-in, forwarding off / async / durable, and mosquitto, interleaved"
    echo "# load: iotrealtime-sim $sim_args (MQTT 3.1.1, rate at the subscriber, 10-90 % of the deliveries)"
    echo "# ours: --Store:Durability=None --Broker:SysInterval=0; async/durable: --Kafka:DefaultTopic=bench --Kafka:DefaultMode=Async|Durable $kafka_args"
    echo "#   (idempotent producer, acks=all, linger 5 ms, lz4) against librdkafka's mock cluster in its own process (topic bench, 6 partitions)"
    echo "# mosquitto: ${bench_mosquitto_base[*]}, max_inflight_messages 0, max_queued_messages 0"
    echo "# RSS: broker VmRSS after the load; load: 1-minute load average as each broker started"
    echo
    python3 - "$results" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
# run mode msg/s published acked received lost dup result cpu_s forwarded dropped failed rss_kb load
print(f"{'run':<4} {'mode':<10} {'msg/s':>10} {'published':>10} {'received':>10} {'lost':>5} {'dup':>4} {'cpu s':>7} {'cpu s/M':>8} {'to Kafka':>10} {'dropped':>8} {'failed':>7} {'RSS MB':>7} {'load':>5}  result")
for r in rows:
    cpu_m = float(r[9]) / (int(r[5]) / 1e6) if int(r[5]) else float("nan")
    print(f"{r[0]:<4} {r[1]:<10} {float(r[2]):>10.0f} {r[3]:>10} {r[5]:>10} {r[6]:>5} {r[7]:>4} {float(r[9]):>7.2f} {cpu_m:>8.2f} {r[10]:>10} {r[11]:>8} {r[12]:>7} {int(r[13]) / 1024:>7.1f} {r[14]:>5}  {r[8]}")
print()
med = {}
for mode in ("off", "async", "durable", "mosquitto"):
    sel = [float(r[2]) for r in rows if r[1] == mode]
    if sel: med[mode] = (statistics.median(sel), min(sel), max(sel))
print("medians (min-max), ratio to forwarding off and to mosquitto")
for mode, (m, lo, hi) in med.items():
    off = med.get("off", (float("nan"),))[0]; mq = med.get("mosquitto", (float("nan"),))[0]
    print(f"  {mode:<10} {m:>10.0f} msg/s ({lo:.0f}-{hi:.0f})   vs off {m / off:>5.2f}   vs mosquitto {m / mq:>5.2f}")
print()
if "off" in med:
    off = med["off"][0]
    if "async" in med:
        cost = 1 - med["async"][0] / off
        print(f"  target async costs <= 15 %:     {cost * 100:>5.1f} %  {'met' if cost <= 0.15 else 'NOT met'}")
    if "durable" in med:
        keep = med["durable"][0] / off
        print(f"  target durable keeps >= 50 %:   {keep * 100:>5.1f} %  {'met' if keep >= 0.5 else 'NOT met'}")
kafka = [r for r in rows if r[1] in ("async", "durable")]
exact = sum(1 for r in kafka if r[10] == r[3] and r[11] == "0" and r[12] == "0")
print(f"  every published message in Kafka (forwarded == published, none dropped or failed): {exact}/{len(kafka)} Kafka runs")
print(f"  zero loss at the subscriber: {sum(r[8] == 'clean' for r in rows)}/{len(rows)} runs clean")
PY
} >"$out"
bench_finish
echo
cat "$out"
echo "written to ${out#"$root"/}; logs in $work"
