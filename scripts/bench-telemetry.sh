#!/usr/bin/env bash
# Telemetry ingest benchmark: readings per second into PostgreSQL, for the sink alone and end to end from Kafka.
# A throwaway PostgreSQL 15 cluster (fsync on unless --durable false) and librdkafka's mock Kafka cluster, both on
# loopback, both removed afterwards; the driver is tests/Telemetry.Bench. Bounded: --readings (default 2,000,000) and
# --timeout seconds per phase (default 600). Results go to docs/benchmarks/telemetry-ingest-<UTC date and time>.txt, a new
# file per run; a tree with uncommitted changes is refused unless --allow-dirty.
#   scripts/bench-telemetry.sh [--readings N] [--devices N] [--batch N] [--durable true|false] [--mode sink|e2e|both] [--runs N]
#                              [--timeout S] [--allow-dirty]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bench_name=bench-telemetry
. "$root/scripts/lib/bench-common.sh"
bench_args "$@"

readings=2000000 devices=1000 batch=50000 durable=true mode=both runs=1 timeout=600
while [[ $# -gt 0 ]]; do
    case $1 in
        --allow-dirty) shift; continue ;;
        -h|--help) sed -n 2,8p "$0"; exit 0 ;;
        --readings) readings=$2 ;;
        --devices) devices=$2 ;;
        --batch) batch=$2 ;;
        --durable) durable=$2 ;;
        --mode) mode=$2 ;;
        --runs) runs=$2 ;;
        --timeout) timeout=$2 ;;
        *) echo "$bench_name: unknown option $1" >&2; exit 2 ;;
    esac
    shift 2
done
for option in readings devices batch runs timeout; do bench_require_positive "$option" "${!option}"; done
[[ $durable == true || $durable == false ]] || { echo "$bench_name: --durable must be true or false" >&2; exit 2; }
[[ $mode == sink || $mode == e2e || $mode == both ]] || { echo "$bench_name: --mode must be sink, e2e or both" >&2; exit 2; }
bench_check_tree

bench_init_work "$bench_name"
echo "== build (Release)"
dotnet build tests/Telemetry.Bench -c Release --nologo -v q >"$work/build.log" 2>&1 \
    || { tail -30 "$work/build.log"; echo "$bench_name: build failed" >&2; exit 1; }
driver=$root/tests/Telemetry.Bench/bin/Release/net10.0/IotRealtime.Telemetry.Bench
bench_results telemetry-ingest

for run in $(seq 1 "$runs"); do
    echo "## run $run (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    timeout $((timeout * 3)) "$driver" --readings "$readings" --devices "$devices" --batch "$batch" --durable "$durable" --mode "$mode" --timeout "$timeout" 2>&1 \
        | grep -v CONFWARN
done | tee "$work/runs.txt"
{
    bench_header "Telemetry ingest: readings per second into PostgreSQL (the sink alone and end to end from Kafka)"
    echo
    cat "$work/runs.txt"
} >"$bench_out"
bench_finish
echo "written to ${bench_out#"$root"/}"
