#!/usr/bin/env bash
# History query benchmark: a throwaway PostgreSQL 15 cluster holding DEVICES x METRICS x POINTS readings (10 million
# by default: 100 x 5 x 20,000, one every 130 s, so the last ~30 days) with the minute and hour roll-ups filled, then
# the real iotrealtime-telemetry service answering GET /api/history for 1-day, 7-day and 30-day charts of one
# device/metric over HTTP on loopback. Warm: WARMUP requests per chart first, then REQUESTS timed requests per chart
# (curl on one keep-alive connection, each request a different device), p50/p99/max reported.
#
#   scripts/bench-history.sh [--devices 100] [--metrics 5] [--points 20000] [--interval 130] [--requests 50]
#                            [--warmup 10] [--covering-indexes] [--allow-dirty]
#
# Results go to docs/benchmarks/telemetry-history-<UTC date and time>.txt, a new file per run; a tree with uncommitted
# changes is refused unless --allow-dirty.
#
# --covering-indexes is an experiment: it adds (device, metric, bucket) INCLUDE (min, max, sum, count, last, last_time)
# indexes to both roll-ups (not part of the sink's schema) so history reads them with index-only scans.
#
# Bounded: a fixed number of rows and requests; every wait has a deadline; the cluster and the service are stopped by
# PID / pg_ctl and the work directory is deleted on exit. The load runs with fsync off (loading speed only: the
# queries timed afterwards read from the buffer cache either way).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bench_name=bench-history
. "$root/scripts/lib/bench-common.sh"
bench_args "$@"

devices=100 metrics=5 points=20000 interval=130 requests=50 warmup=10 covering=0
while [[ $# -gt 0 ]]; do
    case $1 in
        --devices) devices=$2; shift 2 ;;
        --metrics) metrics=$2; shift 2 ;;
        --points) points=$2; shift 2 ;;
        --interval) interval=$2; shift 2 ;;
        --requests) requests=$2; shift 2 ;;
        --warmup) warmup=$2; shift 2 ;;
        --covering-indexes) covering=1; shift ;;
        --allow-dirty) shift ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "$bench_name: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done
for option in devices metrics points interval requests warmup; do bench_require_positive "$option" "${!option}"; done
(( devices * metrics * points <= 50000000 )) || { echo "$bench_name: at most 50 million readings (devices x metrics x points)" >&2; exit 2; }
(( requests <= 1000 && warmup <= 1000 )) || { echo "$bench_name: --requests and --warmup are at most 1000" >&2; exit 2; }

pgbin=/usr/lib/postgresql/15/bin
[[ -x $pgbin/initdb ]] || { echo "$bench_name: PostgreSQL 15 is missing ($pgbin); install postgresql-15" >&2; exit 1; }
command -v curl >/dev/null || { echo "$bench_name: curl is missing" >&2; exit 1; }
bench_check_tree

bench_init_work bench-history
pgdata=$work/pg/data
cleanup() {
    local rc=$?
    (exit "$rc"); bench_cleanup
    if [[ -f $pgdata/postmaster.pid ]]; then as_postgres "$pgbin/pg_ctl" stop -w -t 60 -m fast -D "$pgdata" >/dev/null 2>&1 || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# PostgreSQL refuses to run as root: as root, the cluster belongs to the postgres user.
as_postgres() { if [[ $EUID -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
mkdir -p "$work/pg"
chmod 755 "$work"
[[ $EUID -eq 0 ]] && chown postgres:postgres "$work/pg"

seconds_since() { echo "$(( $(date +%s%N) - $1 ))" | awk '{ printf "%.1f", $1 / 1e9 }'; }

echo "== build (Release)"
dotnet build Telemetry/Service -c Release -o "$root/artifacts/bench/telemetry" --nologo -v q >"$work/build.log" 2>&1 \
    || { tail -30 "$work/build.log"; echo "$bench_name: telemetry build failed" >&2; exit 1; }
bench_results telemetry-history

echo "== PostgreSQL cluster"
as_postgres "$pgbin/initdb" -D "$pgdata" -U postgres --auth=trust -E UTF8 --locale=C --no-sync >"$work/initdb.log" 2>&1 \
    || { cat "$work/initdb.log"; exit 1; }
pg_port=$(free_port)
as_postgres "$pgbin/pg_ctl" start -w -t 60 -D "$pgdata" -l "$work/pg/server.log" -o "-p $pg_port -k $work/pg \
    -c listen_addresses=127.0.0.1 -c shared_buffers=1GB -c effective_cache_size=8GB -c work_mem=64MB -c maintenance_work_mem=1GB \
    -c max_wal_size=8GB -c fsync=off -c full_page_writes=off -c synchronous_commit=off -c autovacuum=off" >/dev/null \
    || { tail -20 "$work/pg/server.log"; exit 1; }
psql_db() { psql -X -q -h 127.0.0.1 -p "$pg_port" -U postgres -v ON_ERROR_STOP=1 "$@"; }
psql_db -d postgres -c "CREATE DATABASE history"

echo "== telemetry service (its PostgreSQL sink creates the schema)"
http_port=$(free_port)
kafka_port=$(free_port) # nothing listens there: this run only serves history, it consumes nothing
dotnet "$root/artifacts/bench/telemetry/iotrealtime-telemetry.dll" \
    "--Telemetry:Kafka:BootstrapServers=127.0.0.1:$kafka_port" --Telemetry:Kafka:Topics=mqtt --Telemetry:Sinks=postgres \
    "--Telemetry:Postgres:ConnectionString=Host=127.0.0.1;Port=$pg_port;Username=postgres;Database=history" \
    --Telemetry:Postgres:RetentionDays=60 "--Telemetry:Http:Port=$http_port" --Telemetry:Http:BindAddress=127.0.0.1 \
    --Logging:LogLevel:Default=Warning >"$work/telemetry.log" 2>&1 &
telemetry_pid=$!
pids+=("$telemetry_pid")
wait_listening "$telemetry_pid" "$http_port" || { tail -30 "$work/telemetry.log"; echo "$bench_name: telemetry did not listen" >&2; exit 1; }
for _ in $(seq 1 300); do
    [[ $(psql_db -d history -tAc "SELECT to_regclass('telemetry_rollup_1h') IS NOT NULL") == t ]] && break
    kill -0 "$telemetry_pid" || { tail -30 "$work/telemetry.log"; exit 1; }
    sleep 0.1
done

total=$(( devices * metrics * points ))
end_epoch=$(( $(date +%s) / 60 * 60 ))
start_epoch=$(( end_epoch - points * interval ))
echo "== load $total readings ($devices devices x $metrics metrics x $points points, every $interval s: $(date -u -d "@$start_epoch" +%FT%TZ) .. $(date -u -d "@$end_epoch" +%FT%TZ))"
load_started=$(date +%s%N)
# Daily partitions named as the sink names them, for every day the data covers.
psql_db -d history -c "
DO \$\$ DECLARE d date; BEGIN
  FOR d IN SELECT generate_series(to_timestamp($start_epoch)::date - 1, to_timestamp($end_epoch)::date + 1, interval '1 day')::date LOOP
    EXECUTE format('CREATE TABLE IF NOT EXISTS telemetry_readings_%s PARTITION OF telemetry_readings FOR VALUES FROM (%L) TO (%L)',
      to_char(d, 'YYYYMMDD'), d::text || ' 00:00:00+00', (d + 1)::text || ' 00:00:00+00');
  END LOOP; END \$\$;"
# In time order, all devices interleaved, as a live stream arrives; ten statements so progress shows.
chunk=$(( (points + 9) / 10 ))
for (( first = 0; first < points; first += chunk )); do
    last=$(( first + chunk - 1 < points - 1 ? first + chunk - 1 : points - 1 ))
    psql_db -d history -c "
INSERT INTO telemetry_readings (time, device, metric, value)
SELECT to_timestamp($start_epoch + i * $interval + d % 60), 'dev-' || d, 'metric' || m,
       round((20 + 10 * sin(i / 40.0 + d) + m * 5 + ((i * 7919 + d * 104729 + m * 31) % 1000) / 500.0)::numeric, 3)::float8
FROM generate_series($first, $last) i CROSS JOIN generate_series(0, $devices - 1) d CROSS JOIN generate_series(0, $metrics - 1) m
ORDER BY i, d, m"
    printf '   %d%%\n' $(( (last + 1) * 100 / points ))
done
load_seconds=$(seconds_since "$load_started")
echo "== roll-ups"
rollup_started=$(date +%s%N)
psql_db -d history -c "SET work_mem = '1GB';
INSERT INTO telemetry_rollup_1m (bucket, device, metric, min, max, sum, count, last, last_time)
SELECT date_bin('1 minute', time, timestamptz 'epoch'), device, metric, min(value), max(value), sum(value), count(*),
       (array_agg(value ORDER BY time DESC))[1], max(time)
FROM telemetry_readings GROUP BY 1, 2, 3;
INSERT INTO telemetry_rollup_1h (bucket, device, metric, min, max, sum, count, last, last_time)
SELECT date_bin('1 hour', bucket, timestamptz 'epoch'), device, metric, min(min), max(max), sum(sum), sum(count),
       (array_agg(last ORDER BY last_time DESC))[1], max(last_time)
FROM telemetry_rollup_1m GROUP BY 1, 2, 3;"
rollup_seconds=$(seconds_since "$rollup_started")
echo "== VACUUM ANALYZE"
vacuum_started=$(date +%s%N)
psql_db -d history -c "VACUUM (ANALYZE)"
vacuum_seconds=$(seconds_since "$vacuum_started")
schema_note="the sink's schema"
if (( covering )); then
    echo "== covering indexes on the roll-ups (experiment)"
    psql_db -d history -c "SET maintenance_work_mem = '1GB';
CREATE INDEX telemetry_rollup_1m_covering ON telemetry_rollup_1m (device, metric, bucket) INCLUDE (min, max, sum, count, last, last_time);
CREATE INDEX telemetry_rollup_1h_covering ON telemetry_rollup_1h (device, metric, bucket) INCLUDE (min, max, sum, count, last, last_time);"
    psql_db -d history -c "VACUUM (ANALYZE) telemetry_rollup_1m, telemetry_rollup_1h"
    schema_note="the sink's schema PLUS covering indexes (device, metric, bucket) INCLUDE (min, max, sum, count, last, last_time) on both roll-ups (experiment)"
fi
counts=$(psql_db -d history -tA -F '|' -c "SELECT (SELECT count(*) FROM telemetry_readings), (SELECT count(*) FROM telemetry_rollup_1m), (SELECT count(*) FROM telemetry_rollup_1h),
  pg_size_pretty((SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid WHERE i.inhparent = 'telemetry_readings'::regclass)),
  pg_size_pretty(pg_total_relation_size('telemetry_rollup_1m')), pg_size_pretty(pg_total_relation_size('telemetry_rollup_1h'))")
IFS='|' read -r raw_rows minute_rows hour_rows raw_size minute_size hour_size <<<"$counts"
[[ $raw_rows == "$total" ]] || { echo "$bench_name: loaded $raw_rows readings, expected $total" >&2; exit 1; }

iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }
base="http://127.0.0.1:$http_port/api/history"
# name, range in seconds, step, what the plan reads
# ("auto": no step parameter, the API picks one for ~300 buckets, as a dashboard asking for a chart gets)
charts=(
    "1-day,86400,60,minute roll-up (+ raw seconds at the ends)"
    "7-day,604800,600,minute roll-up"
    "30-day,2592000,3600,hour roll-up (+ minutes and seconds at the ends)"
    "1-day,86400,auto,minute roll-up (+ raw seconds at the ends)"
    "7-day,604800,auto,hour roll-up (+ minutes and seconds at the ends)"
    "30-day,2592000,auto,hour roll-up (+ minutes and seconds at the ends)"
    "1-hour-raw,3600,10,raw readings (step below a minute)"
)
# The ranges end mid-minute, as a dashboard's "now" does, so the ragged-end paths are part of the timing.
to_epoch=$(( end_epoch - 17 ))
results=()
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for chart in "${charts[@]}"; do
    IFS=, read -r name range step reads <<<"$chart"
    from=$(iso $(( to_epoch - range ))) to=$(iso "$to_epoch")
    urls=() check_url=
    for (( r = 0; r < warmup + requests; r++ )); do
        urls+=("$base?device=dev-$(( r % devices ))&metric=metric$(( r % metrics ))&from=$from&to=$to$([[ $step == auto ]] || echo "&step=$step")")
    done
    # One answer checked in full: HTTP 200 and the readings it counts are the readings stored in the range.
    check=$(curl -sS --fail "${urls[0]}")
    counted=$(grep -o '"count":[0-9]*' <<<"$check" | awk -F: '{ s += $2 } END { print s + 0 }')
    buckets=$(grep -o '"count":' <<<"$check" | wc -l)
    [[ $step == auto ]] && step="auto:$(grep -o '"step":[0-9]*' <<<"$check" | cut -d: -f2)"
    stored=$(psql_db -d history -tAc "SELECT count(*) FROM telemetry_readings WHERE device = 'dev-0' AND metric = 'metric0' AND time >= '$from' AND time < '$to'")
    [[ $counted == "$stored" && $counted -gt 0 ]] || { echo "$bench_name: $name answer counts $counted readings, PostgreSQL holds $stored" >&2; exit 1; }
    args=()
    for url in "${urls[@]}"; do args+=(-o /dev/null "$url"); done
    times=$(curl -sS --fail -w '%{time_total}\n' "${args[@]}" | tail -n "$requests" | awk '{ printf "%.3f\n", $1 * 1000 }')
    [[ $(wc -l <<<"$times") == "$requests" ]] || { echo "$bench_name: $name: expected $requests timings" >&2; exit 1; }
    p50=$(sort -g <<<"$times" | awk '{ a[NR] = $1 } END { printf "%.2f", a[int((NR - 1) * 0.50) + 1] }')
    p99=$(sort -g <<<"$times" | awk '{ a[NR] = $1 } END { printf "%.2f", a[int((NR - 1) * 0.99) + 1] }')
    max=$(sort -g <<<"$times" | tail -1 | awk '{ printf "%.2f", $1 }')
    mean=$(awk '{ s += $1 } END { printf "%.2f", s / NR }' <<<"$times")
    results+=("$(printf '%-11s %8s %10s %8s %9s | %7s %7s %7s %7s | %s' "$name" "$range" "$step" "$buckets" "$counted" "$p50" "$p99" "$max" "$mean" "$reads")")
    echo "   $name: p50 $p50 ms, p99 $p99 ms ($buckets buckets, $counted readings)"
done

{
    bench_header "History API: 1-, 7- and 30-day charts over PostgreSQL"
    echo "# $("$pgbin/postgres" --version); load average (1/5/15 min) before the timing: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "# data: $raw_rows readings ($devices devices x $metrics metrics x $points points, one per $interval s per series, $(iso "$start_epoch") .. $(iso "$end_epoch")),"
    echo "#       loaded in ${load_seconds} s with generate_series in time order into daily partitions; roll-ups filled in ${rollup_seconds} s; VACUUM ANALYZE ${vacuum_seconds} s"
    echo "# tables: telemetry_readings $raw_rows rows, $raw_size; telemetry_rollup_1m $minute_rows rows, $minute_size; telemetry_rollup_1h $hour_rows rows, $hour_size"
    echo "# PostgreSQL: shared_buffers=1GB work_mem=64MB (fsync off for the load), $schema_note; service: iotrealtime-telemetry Release, history API on loopback"
    echo "# timing: curl time_total per request on one keep-alive connection, $warmup warm-up requests per chart, then $requests timed, each a different device/metric; target < 50 ms"
    echo
    printf '%-11s %8s %10s %8s %9s | %7s %7s %7s %7s | %s\n' chart range_s step_s buckets readings p50_ms p99_ms max_ms mean_ms "read from"
    printf '%s\n' "${results[@]}"
} >"$bench_out"
bench_finish
cat "$bench_out"
echo "== written to ${bench_out#"$root"/}"
