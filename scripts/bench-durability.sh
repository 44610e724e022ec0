#!/usr/bin/env bash
# QoS 1 fan-in through the broker under each durability policy, next to Eclipse Mosquitto, interleaved in one run.
#   scripts/bench-durability.sh [--runs N] [--messages N] [--duration S] [--targets "none write fsync mosquitto"]
#                               [--sessions "clean persistent"] [--allow-dirty]
# Each run, for each subscriber session (clean, persistent) and each target in turn: start the broker on a free
# loopback port (ours: Store:Durability=None|Write|Fsync on a fresh data directory), run `iotrealtime-sim fanin`
# (50 publishers -> 1 subscriber on bench/#, QoS 1, 100 B, <= 500 in flight, N messages or S seconds), read the
# broker's CPU time (utime+stime from /proc/PID/stat) before and after, stop the broker.
# Results go to docs/benchmarks/durability-<UTC date and time>.txt, a new file per run; a tree with uncommitted changes
# is refused unless --allow-dirty. Every step is bounded in time; processes are stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bench_name=bench-durability
. "$root/scripts/lib/bench-common.sh"
bench_args "$@"

runs=3
messages=200000
duration=20
publishers=50
inflight=500
payload=100
targets="none write fsync mosquitto"
sessions="clean persistent"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --runs) runs=$2; shift 2 ;;
        --messages) messages=$2; shift 2 ;;
        --duration) duration=$2; shift 2 ;;
        --targets) targets=$2; shift 2 ;;
        --sessions) sessions=$2; shift 2 ;;
        --allow-dirty) shift ;;
        -h|--help) sed -n 2,10p "$0"; exit 0 ;;
        *) echo "bench-durability: unknown option '$1' (accepted: --runs, --messages, --duration, --targets, --sessions, --allow-dirty)" >&2; exit 2 ;;
    esac
done
for n in runs messages duration; do
    bench_require_positive "$n" "${!n}"
done
for t in $targets; do
    [[ $t =~ ^(none|write|fsync|mosquitto)$ ]] || { echo "bench-durability: --targets takes none, write, fsync, mosquitto (was '$t')" >&2; exit 2; }
done
for s in $sessions; do
    [[ $s =~ ^(clean|persistent)$ ]] || { echo "bench-durability: --sessions takes clean and/or persistent (was '$s')" >&2; exit 2; }
done
bench_check_tree

bench_limit_open_files 20000

bench_init_work bench-durability
bench_build

if [[ $targets == *mosquitto* ]]; then
    bench_ensure_mosquitto
fi
bench_results durability

start_broker() {
    local target=$1 port=$2 dir=$3
    case $target in
        mosquitto)
            # max_inflight_messages 0 / max_queued_messages 0: no per-client limits, so mosquitto never drops a
            # QoS 1 message it accepted (the closed loop already keeps at most $inflight on their way).
            bench_start_mosquitto "$port" "$dir" "max_inflight_messages 0" "max_queued_messages 0"
            ;;
        none|write|fsync)
            local durability
            durability=$(case $target in none) echo None ;; write) echo Write ;; fsync) echo Fsync ;; esac)
            bench_start_ours "$port" "$dir" --Listeners:BindAddress=127.0.0.1 --Data:Directory="$dir/data" \
                --Store:Durability="$durability" --Broker:SysInterval=0
            ;;
    esac
}

results=$work/results.tsv
: >"$results"
for run in $(seq 1 "$runs"); do
    for session in $sessions; do
        for target in $targets; do
            dir=$work/$run-$session-$target
            mkdir -p "$dir"
            port=$(free_port)
            load=$(cut -d' ' -f1 /proc/loadavg)
            echo "== run $run, $session subscriber: $target on 127.0.0.1:$port (load average $(cut -d' ' -f1-3 /proc/loadavg))"
            broker_pid=$(start_broker "$target" "$port" "$dir")
            pids+=("$broker_pid")
            bench_wait_broker "$target" "$broker_pid" "$port" "$dir"
            sleep 1
            cpu_before=$(cpu_ticks "$broker_pid")
            # The simulator bounds itself (messages, duration, drain, stall timeout); timeout is the last resort.
            sim_rc=0
            timeout $((duration + 60)) dotnet "$sim_dll" fanin --host 127.0.0.1 --port "$port" --publishers "$publishers" \
                --qos 1 --payload "$payload" --messages "$messages" --inflight "$inflight" --duration "$duration" \
                --subscriber-session "$session" --json "$dir/sim.json" >"$dir/sim.log" 2>&1 || sim_rc=$?
            cpu_after=$(cpu_ticks "$broker_pid")
            stop_pid "$broker_pid"
            tail -7 "$dir/sim.log" | sed 's/^/    /'
            if [[ ! -s $dir/sim.json ]]; then
                echo "bench-durability: simulator wrote no report (exit $sim_rc); log in $dir/sim.log" >&2
                exit 1
            fi
            jq -r --arg run "$run" --arg session "$session" --arg target "$target" --arg load "$load" \
                --arg cpu "$(( cpu_after - cpu_before ))" --arg tps "$ticks_per_second" --arg rc "$sim_rc" '
                [$run, $session, $target, .steady_messages_per_second, .publish_ack_latency.p50_ms, .publish_ack_latency.p99_ms,
                 .end_to_end_latency.p99_ms, (($cpu | tonumber) / ($tps | tonumber) / (.received / 1000000)),
                 .received, .lost, .duplicates, (if .stalled then "stalled" elif $rc == "0" then "clean" else "exit " + $rc end), $load]
                | @tsv' "$dir/sim.json" >>"$results"
            sleep 2 # let TIME_WAIT and the page cache settle between runs
        done
    done
done

out=$bench_out
{
    bench_header "QoS 1 fan-in under each durability policy, ours next to Mosquitto"
    echo "# data dirs on $(df -T "$work" | awk 'NR == 2 { print $2 }'); mosquitto: ${bench_mosquitto_base[*]}, max_inflight_messages 0, max_queued_messages 0 (persistence off)"
    echo "# simulator: iotrealtime-sim fanin, $publishers publishers -> 1 subscriber on bench/#, QoS 1, $payload B, <= $inflight in flight"
    echo "# msg/s: at the subscriber, 10-90 % of the run; ack: publish->PUBACK at the publishers; cpu: broker utime+stime per million messages; load: 1-minute load average as each broker started"
    echo
    python3 - "$results" <<'PY'
import statistics, sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1]) if line.strip()]
print(f"{'run':<4} {'subscriber':<11} {'broker':<10} {'msg/s':>9} {'ack p50 ms':>11} {'ack p99 ms':>11} {'e2e p99 ms':>11} {'cpu s/M':>8} {'received':>9} {'lost':>5} {'dup':>4} {'load':>5}  result")
for r in rows:
    print(f"{r[0]:<4} {r[1]:<11} {r[2]:<10} {float(r[3]):>9.0f} {float(r[4]):>11.3f} {float(r[5]):>11.3f} {float(r[6]):>11.3f} {float(r[7]):>8.2f} {r[8]:>9} {r[9]:>5} {r[10]:>4} {r[12]:>5}  {r[11]}")
print()
names = {"none": "ours None", "write": "ours Write", "fsync": "ours Fsync", "mosquitto": "mosquitto"}
medians = {}
for session in dict.fromkeys(r[1] for r in rows):
    print(f"{session} subscriber: median (min-max)")
    for target in dict.fromkeys(r[2] for r in rows):
        sel = [r for r in rows if r[1] == session and r[2] == target]
        if not sel: continue
        cols = {name: [float(r[i]) for r in sel] for name, i in (("rate", 3), ("p50", 4), ("p99", 5), ("cpu", 7))}
        medians[(session, target)] = {k: statistics.median(v) for k, v in cols.items()}
        m = medians[(session, target)]
        print(f"  {names[target]:<11} {m['rate']:>8.0f} msg/s ({min(cols['rate']):.0f}-{max(cols['rate']):.0f}), "
              f"ack p50 {m['p50']:.3f} ms ({min(cols['p50']):.3f}-{max(cols['p50']):.3f}), "
              f"ack p99 {m['p99']:.3f} ms ({min(cols['p99']):.3f}-{max(cols['p99']):.3f}), "
              f"cpu {m['cpu']:.2f} s/M ({min(cols['cpu']):.2f}-{max(cols['cpu']):.2f})")
    base = medians.get((session, "none"))
    for target in ("write", "fsync"):
        m = medians.get((session, target))
        if base and m:
            print(f"  ratio {names[target]} / ours None: msg/s {m['rate'] / base['rate']:.2f}, ack p50 {m['p50'] / base['p50']:.2f}, "
                  f"ack p99 {m['p99'] / base['p99']:.2f}, cpu/M {m['cpu'] / base['cpu']:.2f}")
    mq = medians.get((session, "mosquitto"))
    for target in ("none", "write", "fsync"):
        m = medians.get((session, target))
        if mq and m:
            print(f"  ratio {names[target]} / mosquitto: msg/s {m['rate'] / mq['rate']:.2f}, ack p50 {m['p50'] / mq['p50']:.2f}, "
                  f"ack p99 {m['p99'] / mq['p99']:.2f}, cpu/M {m['cpu'] / mq['cpu']:.2f}")
    print()
PY
} >"$out"
bench_finish
echo
cat "$out"
echo "written to ${out#"$root"/}; logs in $work"
