#!/usr/bin/env bash
# Eclipse Paho's interoperability suites against our broker and Eclipse Mosquitto, side by side in one run.
#   scripts/conformance.sh --paho PATH [--runs N] [--brokers "ours mosquitto"] [--test-timeout S] [--allow-dirty]
# PATH is a checkout of https://github.com/eclipse/paho.mqtt.testing (not part of this repository; nothing here fetches
# or builds it). Its interoperability/client_test.py (MQTT 3.1.1) and client_test5.py (MQTT 5.0) run N times (default
# 1) against each broker, a fresh broker process and data directory for every suite run, on a free loopback port.
# The suites' own command line (-p) clashes with unittest.main(), so a small wrapper written by this script imports each
# suite, sets its module's host, port and topics the way its __main__ block would, and runs one test per process (the
# suite's setUpClass clears retained messages and sessions first), so a test that hangs costs only itself.
#   ours:      iotrealtime-broker (Release) --Broker:MaxKeepAlive=60 --Broker:SubscribeDeniedReasonCode=128
#              "--Auth:Acl:0=deny subscribe test/nosubscribe" "--Auth:Acl:1=allow all #", other settings default
#   mosquitto: set_tcp_nodelay true, max_keepalive 60, acl_file with "topic deny test/nosubscribe", "topic readwrite #"
# (keep alive 120 from the suites is answered with Server Keep Alive 60; SUBSCRIBE to test/nosubscribe is refused, 0x80).
# Results: docs/benchmarks/conformance-<UTC date and time>.txt, a new file per run, with pass counts per test. A tree
# with uncommitted changes is refused unless --allow-dirty. Every test is bounded by --test-timeout (default 120 s; one
# that runs out counts as failed); processes are stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bench_name=conformance
. "$root/scripts/lib/bench-common.sh"
bench_args "$@"

paho=""
runs=1
brokers="ours mosquitto"
timeout_s=120
while [[ $# -gt 0 ]]; do
    case "$1" in
        --paho) paho=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        --brokers) brokers=$2; shift 2 ;;
        --test-timeout) timeout_s=$2; shift 2 ;;
        --allow-dirty) shift ;;
        -h|--help) sed -n 2,17p "$0"; exit 0 ;;
        *) echo "conformance: unknown option '$1' (accepted: --paho, --runs, --brokers, --test-timeout, --allow-dirty)" >&2; exit 2 ;;
    esac
done
[[ -n $paho ]] || { echo "conformance: --paho PATH (a checkout of eclipse/paho.mqtt.testing) is required" >&2; exit 2; }
paho=$(realpath "$paho")
for f in interoperability/client_test.py interoperability/client_test5.py interoperability/mqtt/clients/V311 interoperability/mqtt/clients/V5; do
    [[ -e $paho/$f ]] || { echo "conformance: $paho/$f is missing; --paho must be a checkout of eclipse/paho.mqtt.testing" >&2; exit 2; }
done
for n in runs; do bench_require_positive "$n" "${!n}"; done
bench_require_positive test-timeout "$timeout_s"
(( runs <= 100 )) || { echo "conformance: --runs is at most 100" >&2; exit 2; }
for b in $brokers; do
    [[ $b == ours || $b == mosquitto ]] || { echo "conformance: --brokers takes 'ours' and/or 'mosquitto' (was '$b')" >&2; exit 2; }
done
command -v python3 >/dev/null || { echo "conformance: python3 is required for the suites" >&2; exit 1; }
bench_check_tree
paho_commit=$(git -C "$paho" rev-parse --short HEAD 2>/dev/null || echo "not a git checkout")
paho_changes=$(git -C "$paho" status --porcelain 2>/dev/null | grep -v '__pycache__' || true)

bench_init_work conformance
bench_build
[[ $brokers == *mosquitto* ]] && bench_ensure_mosquitto
bench_results conformance

# The wrapper: imports one suite from the checkout and sets what its __main__ block sets; without a test name it lists
# the suite's tests, with one it runs that test and appends its outcome as a JSON line.
cat >"$work/run_suite.py" <<'PY'
import importlib, json, sys, unittest
paho, name, port, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
only = sys.argv[5] if len(sys.argv) > 5 else None
sys.path.insert(0, paho + "/interoperability")
suite_module = importlib.import_module(name)
suite_module.host = "127.0.0.1"
suite_module.port = port
suite_module.nosubscribe_topics = ("test/nosubscribe",)
if name == "client_test5":
    suite_module.topic_prefix = "client_test5/"
    suite_module.topics = [suite_module.topic_prefix + t for t in ["TopicA", "TopicA/B", "Topic/C", "TopicA/C", "/TopicA"]]
    suite_module.wildtopics = [suite_module.topic_prefix + t for t in ["TopicA/+", "+/C", "#", "/#", "/+", "+/+", "TopicA/#"]]
else:
    suite_module.topics = ("TopicA", "TopicA/B", "Topic/C", "TopicA/C", "/TopicA")
    suite_module.wildtopics = ("TopicA/+", "+/C", "#", "/#", "/+", "+/+", "TopicA/#")
sink = open(out, "a", buffering=1)
if only is None:
    for test in unittest.defaultTestLoader.loadTestsFromTestCase(suite_module.Test):
        sink.write(json.dumps({"test": test._testMethodName, "outcome": "planned"}) + "\n")
    sys.exit(0)
tests = unittest.defaultTestLoader.loadTestsFromName("Test." + only, suite_module)

class Recorder(unittest.TextTestResult):
    def record(self, test, outcome, err=None):
        detail = ""
        if err is not None:
            lines = [l for l in self._exc_info_to_string(err, test).strip().splitlines() if l.strip()]
            detail = lines[-1][:300] if lines else ""
        sink.write(json.dumps({"test": test._testMethodName, "outcome": outcome, "detail": detail}) + "\n")
    def addSuccess(self, test):
        super().addSuccess(test); self.record(test, "pass")
    def addFailure(self, test, err):
        super().addFailure(test, err); self.record(test, "fail", err)
    def addError(self, test, err):
        super().addError(test, err); self.record(test, "error", err)
    def addSkip(self, test, reason):
        super().addSkip(test, reason); sink.write(json.dumps({"test": test._testMethodName, "outcome": "skip", "detail": reason}) + "\n")

unittest.TextTestRunner(stream=sys.stdout, verbosity=2, resultclass=Recorder).run(tests)
PY

start_broker() {
    local target=$1 port=$2 dir=$3
    case $target in
        ours)
            bench_start_ours "$port" "$dir" --Listeners:BindAddress=127.0.0.1 --Data:Directory="$dir/data" \
                --Broker:MaxKeepAlive=60 --Broker:SubscribeDeniedReasonCode=128 \
                "--Auth:Acl:0=deny subscribe test/nosubscribe" "--Auth:Acl:1=allow all #"
            ;;
        mosquitto)
            printf 'topic deny test/nosubscribe\ntopic readwrite #\n' >"$dir/acl"
            # Started as root, mosquitto reads the ACL file after dropping to its own user.
            chmod 755 "$work" "$dir"
            chmod 644 "$dir/acl"
            bench_start_mosquitto "$port" "$dir" "max_keepalive 60" "acl_file $dir/acl"
            ;;
    esac
}

results=$work/results.jsonl
: >"$results"
for run in $(seq 1 "$runs"); do
    for suite in client_test client_test5; do
        for target in $brokers; do
            dir=$work/$run-$suite-$target
            mkdir -p "$dir"
            port=$(free_port)
            load=$(cut -d' ' -f1-3 /proc/loadavg)
            echo "== run $run, $suite: $target on 127.0.0.1:$port (load average $load)"
            broker_pid=$(start_broker "$target" "$port" "$dir")
            pids+=("$broker_pid")
            bench_wait_broker "$target" "$broker_pid" "$port" "$dir"
            (cd "$dir" && timeout 60 python3 "$work/run_suite.py" "$paho" "$suite" "$port" "$dir/tests.jsonl") >"$dir/suite.log" 2>&1 \
                || { tail -20 "$dir/suite.log"; echo "conformance: could not list the tests of $suite" >&2; exit 1; }
            : >"$dir/exits.tsv"
            for test in $(jq -r 'select(.outcome == "planned") | .test' "$dir/tests.jsonl"); do
                test_rc=0
                (cd "$dir" && timeout "$timeout_s" python3 "$work/run_suite.py" "$paho" "$suite" "$port" "$dir/tests.jsonl" "$test") >>"$dir/suite.log" 2>&1 || test_rc=$?
                printf '%s\t%s\n' "$test" "$test_rc" >>"$dir/exits.tsv"
            done
            stop_pid "$broker_pid"
            python3 - "$dir/tests.jsonl" "$dir/exits.tsv" "$run" "$suite" "$target" "$load" "$timeout_s" >>"$results" <<'PY'
import json, sys
path, exits, run, suite, target, load, limit = sys.argv[1:8]
outcomes, planned = {}, []
for line in open(path):
    r = json.loads(line)
    if r["outcome"] == "planned": planned.append(r["test"])
    else: outcomes[r["test"]] = r
codes = dict(l.rstrip("\n").split("\t") for l in open(exits) if l.strip())
for test in planned:
    rc = codes.get(test, "?")
    r = outcomes.get(test, {"outcome": f"timeout (over {limit} s)" if rc == "124" else f"no result (exit {rc})", "detail": ""})
    print(json.dumps({"run": int(run), "suite": suite, "broker": target, "test": test, "outcome": r["outcome"], "detail": r.get("detail", ""), "load": load}))
PY
            passed=$(grep -c '"outcome": "pass"' "$dir/tests.jsonl" || true)
            total=$(grep -c '"outcome": "planned"' "$dir/tests.jsonl" || true)
            echo "   $passed/$total passed"
            sleep 1
        done
    done
done

{
    bench_header "Eclipse Paho interoperability suites (client_test.py MQTT 3.1.1, client_test5.py MQTT 5.0), ours next to Mosquitto"
    echo "# paho.mqtt.testing checkout: $paho at $paho_commit$([[ -n $paho_changes ]] && echo ' (with local changes)')"
    echo "# ours: iotrealtime-broker --Broker:MaxKeepAlive=60 --Broker:SubscribeDeniedReasonCode=128 \"--Auth:Acl:0=deny subscribe test/nosubscribe\" \"--Auth:Acl:1=allow all #\" (fresh data dir, other settings default)"
    echo "# mosquitto: ${bench_mosquitto_base[*]}, max_keepalive 60, acl_file: topic deny test/nosubscribe / topic readwrite #"
    echo "# each suite run: a fresh broker on a free loopback port; one process per test (at most $timeout_s s each); host, port and topics set by a wrapper as the suite's __main__ sets them"
    echo
    python3 - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
brokers = list(dict.fromkeys(r["broker"] for r in rows))
names = {"client_test": "MQTT 3.1.1, interoperability/client_test.py", "client_test5": "MQTT 5.0, interoperability/client_test5.py"}
runs = max(r["run"] for r in rows)
for suite in ("client_test", "client_test5"):
    sel = [r for r in rows if r["suite"] == suite]
    if not sel: continue
    tests = list(dict.fromkeys(r["test"] for r in sel))
    print(f"{names[suite]}: passes per test over {runs} run(s)")
    print(f"  {'test':<36}" + "".join(f" {b:>10}" for b in brokers))
    for t in tests:
        cells = []
        for b in brokers:
            rs = [r for r in sel if r["test"] == t and r["broker"] == b]
            cells.append(f"{sum(r['outcome'] == 'pass' for r in rs)}/{len(rs)}")
        print(f"  {t:<36}" + "".join(f" {c:>10}" for c in cells))
    for b in brokers:
        per_run = []
        for run in range(1, runs + 1):
            rs = [r for r in sel if r["broker"] == b and r["run"] == run]
            per_run.append(f"{sum(r['outcome'] == 'pass' for r in rs)}/{len(rs)}")
        always = sum(all(r["outcome"] == "pass" for r in sel if r["broker"] == b and r["test"] == t) for t in tests)
        print(f"  {b}: tests passed in every run {always}/{len(tests)}; per run {', '.join(per_run)}")
    print()
failed = [r for r in rows if r["outcome"] != "pass"]
print(f"not passed ({len(failed)}): run, suite, broker, test, outcome, last line of the error")
for r in failed:
    print(f"  {r['run']} {r['suite']} {r['broker']} {r['test']} {r['outcome']}: {r['detail']}")
PY
} >"$bench_out"
bench_finish
echo
cat "$bench_out"
echo "written to ${bench_out#"$root"/}; logs in $work"
