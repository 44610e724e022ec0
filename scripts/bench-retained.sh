#!/usr/bin/env bash
# Retained lookup at SUBSCRIBE time: the topic tree next to the linear scan it replaced, side by side in one run.
#   scripts/bench-retained.sh [--out FILE] [--allow-dirty]
# BenchmarkDotNet (tests/Broker.Benchmarks, class RetainedStoreBenchmarks, the short job): 1,000,000 retained
# messages site/{000000..099999}/d{0..9}/state; filters site/042424/+/state and site/042424/# match 10 of them;
# one operation is one lookup. Writes the header (command, commit, machine, load averages) and BenchmarkDotNet's
# output to docs/benchmarks/retained-<UTC date and time>.txt, a new file per run, or to FILE (outside
# docs/benchmarks/, for a trial run). A tree with uncommitted changes is refused unless --allow-dirty.
# One build, then each case in a process of its own with a 1,000,000-message set-up: about 9 minutes on 2 cores under
# a load average of 17, most of it the linear scan's cases (a fraction of a second per lookup).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bench_name=bench-retained
. "$root/scripts/lib/bench-common.sh"
bench_args "$@"

out=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --out) out=$2; shift 2 ;;
        --allow-dirty) shift ;;
        -h|--help) sed -n 2,10p "$0"; exit 0 ;;
        *) echo "bench-retained: unknown option '$1' (accepted: --out, --allow-dirty)" >&2; exit 2 ;;
    esac
done
if [[ -n $out && $(realpath -m "$out") == "$root/docs/benchmarks/"* ]]; then
    echo "bench-retained: --out is for trial runs; results under docs/benchmarks/ get a name of their own" >&2
    exit 2
fi
bench_check_tree

bench_init_work bench-retained
echo "== build (Release)"
dotnet build tests/Broker.Benchmarks -c Release --nologo -v q >"$work/build.log" 2>&1 \
    || { tail -30 "$work/build.log"; echo "bench-retained: build failed" >&2; exit 1; }
if [[ -z $out ]]; then
    bench_results retained
    out=$bench_out
fi

echo "== run (BenchmarkDotNet, log in $work/benchmark.log)"
# BenchmarkDotNet bounds its own iterations; the timeout is the last resort.
timeout 1200 dotnet run -c Release --no-build --project tests/Broker.Benchmarks -- --filter '*RetainedStoreBenchmarks*' \
    >"$work/benchmark.log" 2>&1 \
    || { tail -40 "$work/benchmark.log"; echo "bench-retained: the benchmark failed" >&2; exit 1; }

{
    bench_header "Retained lookup at SUBSCRIBE: topic tree vs linear scan, 1,000,000 retained messages, filters matching 10"
    echo
    cat "$work/benchmark.log"
} >"$out"
bench_finish
sed -n '/^\/\/ \* Summary \*/,$p' "$out"
echo "written to ${out#"$root"/}; logs in $work"
