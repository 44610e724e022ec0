#!/usr/bin/env bash
# Broker RSS per idle MQTT connection: ours next to Eclipse Mosquitto, interleaved in one run.
#   scripts/bench-idle.sh [--runs N] [--connections N] [--rate N] [--brokers "ours mosquitto"] [--baseline REV]
#                         [--allow-dirty]
# Each run: start the broker on a free loopback port, read VmRSS (at rest), open N idle connections with
# iotrealtime-sim, wait until VmRSS is stable, read it again; KB per connection = (loaded - at rest) / held.
# --baseline REV also builds git revision REV of our broker (Release, in a worktree of its own under the work dir,
# removed at exit) and measures it as ours@<short rev> beside ours, same arguments, in every run (right after ours;
# before it on even runs); the results record git describe of REV and the ratio ours / ours@<rev> (after/before).
# Results go to docs/benchmarks/idle-<UTC date and time>.txt, a new file per run (scripts/bench.sh passes --out FILE, a
# path outside docs/benchmarks/, and --baseline-dll DLL, the baseline it built, and puts them in its own results).
# A tree with uncommitted changes is refused unless --allow-dirty. Every step is bounded in time; processes are
# stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bench_name=bench-idle
. "$root/scripts/lib/bench-common.sh"
bench_args "$@"

runs=2
connections=15000
rate=2000
brokers="ours mosquitto"
baseline_rev=""
baseline_name=""
baseline_dll=""
out=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --runs) runs=$2; shift 2 ;;
        --connections) connections=$2; shift 2 ;;
        --rate) rate=$2; shift 2 ;;
        --brokers) brokers=$2; shift 2 ;;
        --baseline) baseline_rev=$2; shift 2 ;;
        --baseline-dll) baseline_dll=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --allow-dirty) shift ;;
        -h|--help) sed -n 2,13p "$0"; exit 0 ;;
        *) echo "bench-idle: unknown option '$1' (accepted: --runs, --connections, --rate, --brokers, --baseline, --allow-dirty)" >&2; exit 2 ;;
    esac
done
for n in runs connections rate; do
    bench_require_positive "$n" "${!n}"
done
for b in $brokers; do
    [[ $b == ours || $b == mosquitto ]] || { echo "bench-idle: --brokers takes 'ours' and/or 'mosquitto' (was '$b')" >&2; exit 2; }
done
if [[ -n $baseline_dll && ( -z $baseline_rev || ! -f $baseline_dll ) ]]; then
    echo "bench-idle: --baseline-dll takes the broker scripts/bench.sh built for --baseline REV (both given, the file present)" >&2
    exit 2
fi
if [[ -n $out && $(realpath -m "$out") == "$root/docs/benchmarks/"* ]]; then
    echo "bench-idle: --out is for scripts/bench.sh's work files; results under docs/benchmarks/ get a name of their own" >&2
    exit 2
fi
bench_check_tree
# A wrong revision is refused before anything is built.
[[ -z $baseline_rev ]] || bench_baseline_names "$baseline_rev"

# Both the broker and the simulator hold one descriptor per connection plus their own.
need_files=$((connections + 100))
hard=$(ulimit -Hn)
if [[ $hard != unlimited && $hard -lt $need_files ]]; then
    echo "bench-idle: open-file hard limit is $hard; $connections connections need at least $need_files per process" >&2
    exit 1
fi
ulimit -n "$([[ $hard == unlimited ]] && echo 1048576 || echo "$hard")"
echo "open-file limit for started processes: $(ulimit -n)"

bench_init_work bench-idle
bench_build
if [[ -n $baseline_dll ]]; then
    bench_baseline_names "$baseline_rev"
elif [[ -n $baseline_rev ]]; then
    bench_build_baseline "$baseline_rev"
fi
if [[ -z $out ]]; then
    bench_results idle
    out=$bench_out
fi

if [[ $brokers == *mosquitto* ]]; then
    bench_ensure_mosquitto
fi

# Samples RSS every 2 s until three consecutive readings are within 1% (or 256 KB) of each other; 60 s at most.
stable_rss_kb() {
    local pid=$1 prev cur stable=0
    prev=$(rss_kb "$pid")
    for _ in $(seq 1 30); do
        sleep 2
        cur=$(rss_kb "$pid")
        local diff=$((cur > prev ? cur - prev : prev - cur))
        if (( diff * 100 <= prev || diff <= 256 )); then stable=$((stable + 1)); else stable=0; fi
        prev=$cur
        if (( stable >= 2 )); then echo "$cur"; return 0; fi
    done
    echo "bench-idle: RSS of $pid did not stabilise within 60 s; using the last reading" >&2
    echo "$cur"
}

start_broker() {
    local kind=$1 port=$2 dir=$3
    case $kind in
        mosquitto) bench_start_mosquitto "$port" "$dir" "max_connections -1" ;;
        ours) bench_start_ours "$port" "$dir" --bind 127.0.0.1 --data-dir "$dir/data" --Broker:SysInterval=0 ;;
        ours@*) bench_start_dll "$baseline_dll" "$port" "$dir" --bind 127.0.0.1 --data-dir "$dir/data" --Broker:SysInterval=0 ;;
    esac
}

results=$work/results.tsv
: >"$results"
for run in $(seq 1 "$runs"); do
    for kind in $(bench_run_order "$run" $brokers); do
        dir=$work/$run-$kind
        mkdir -p "$dir"
        port=$(free_port)
        echo "== run $run: $kind on 127.0.0.1:$port"
        broker_pid=$(start_broker "$kind" "$port" "$dir")
        pids+=("$broker_pid")
        bench_wait_broker "$kind" "$broker_pid" "$port" "$dir"
        sleep 2
        at_rest=$(stable_rss_kb "$broker_pid")

        # The hold is a ceiling: the script stops the simulator as soon as RSS has been read.
        dotnet "$sim_dll" idle --host 127.0.0.1 --port "$port" --connections "$connections" --rate "$rate" \
            --hold 300 --keepalive 300 --client-id-pattern "idle-{0}" --json "$dir/sim.json" >"$dir/sim.log" 2>&1 &
        sim_pid=$!
        pids+=("$sim_pid")
        ramp_limit=$((connections / rate + 60))
        for _ in $(seq 1 $((ramp_limit * 10))); do
            grep -q '^HOLDING' "$dir/sim.log" && break
            kill -0 "$sim_pid" 2>/dev/null || break
            sleep 0.1
        done
        if ! grep -q '^HOLDING' "$dir/sim.log"; then
            tail -20 "$dir/sim.log"
            echo "bench-idle: simulator did not finish its ramp within $ramp_limit s" >&2
            exit 1
        fi
        grep '^HOLDING' "$dir/sim.log"
        loaded=$(stable_rss_kb "$broker_pid")
        # Established connections on the broker's port, as the kernel sees them, when RSS was read.
        held=$(ss -Htn state established "( src 127.0.0.1 and sport = :$port )" | wc -l)
        stop_pid "$sim_pid"
        stop_pid "$broker_pid"
        tail -8 "$dir/sim.log" | sed 's/^/    /'
        if (( held == 0 )); then
            echo "bench-idle: no connections held on $kind" >&2
            exit 1
        fi
        per_conn=$(awk -v l="$loaded" -v b="$at_rest" -v n="$held" 'BEGIN { printf "%.2f", (l - b) / n }')
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$run" "$kind" "$held" "$at_rest" "$loaded" "$per_conn" >>"$results"
        echo "   held $held, at rest ${at_rest} KB, loaded ${loaded} KB, ${per_conn} KB/connection"
        sleep 3 # let TIME_WAIT and the kernel's socket memory settle between runs
    done
done

{
    bench_header "Broker RSS per idle connection"
    echo "# ours: --Broker:SysInterval=0; mosquitto: ${bench_mosquitto_base[*]}, max_connections -1"
    echo "# simulator: iotrealtime-sim idle, MQTT 3.1.1 clean session, keep-alive 300 s, sources 127.0.0.2+"
    echo
    w=$(( ${#baseline_name} > 10 ? ${#baseline_name} : 10 ))
    printf "%-4s %-${w}s %8s %14s %12s %10s\n" run broker held at_rest_MB loaded_MB KB/conn
    while IFS=$'\t' read -r r k h b l p; do
        printf "%-4s %-${w}s %8s %14.1f %12.1f %10s\n" "$r" "$k" "$h" "$(awk -v v="$b" 'BEGIN{print v/1024}')" "$(awk -v v="$l" 'BEGIN{print v/1024}')" "$p"
    done <"$results"
    echo
    for kind in $(bench_run_order 1 $brokers); do
        printf "median %-${w}s %s KB/conn\n" "$kind" "$(awk -F'\t' -v k="$kind" '$2 == k { print $6 }' "$results" | median)"
    done
    ours=$(awk -F'\t' '$2 == "ours" { print $6 }' "$results" | median)
    if [[ $brokers == *ours* && $brokers == *mosquitto* ]]; then
        mosq=$(awk -F'\t' '$2 == "mosquitto" { print $6 }' "$results" | median)
        echo "ratio ours/mosquitto: $(awk -v a="$ours" -v b="$mosq" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "n/a" }')"
    fi
    if [[ -n $baseline_name && $brokers == *ours* ]]; then
        before=$(awk -F'\t' -v k="$baseline_name" '$2 == k { print $6 }' "$results" | median)
        # Less memory is better: within 5 % unless ours holds more than 1.05 times the baseline's KB per connection.
        echo "ratio after/before (ours/$baseline_name): $(awk -v a="$ours" -v b="$before" 'BEGIN { if (b > 0) printf "%.3f, %s", a / b, (a <= 1.05 * b ? "within 5 %" : "NOT within 5 %"); else print "n/a" }')"
    fi
} >"$out"
bench_finish
echo
cat "$out"
echo
echo "written to ${out#"$root"/}; logs in $work"
