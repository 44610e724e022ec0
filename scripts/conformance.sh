#!/usr/bin/env bash
# Eclipse Paho's interoperability suites against our broker (one node, or a 3-node cluster) and Eclipse Mosquitto, side
# by side in one run.
#   scripts/conformance.sh --paho PATH [--runs N] [--brokers "ours cluster3 cluster3-split cluster3-rr mosquitto"]
#                          [--test-timeout S] [--allow-dirty]
# PATH is a checkout of https://github.com/eclipse/paho.mqtt.testing (not part of this repository; nothing here fetches
# or builds it). Its interoperability/client_test.py (MQTT 3.1.1) and client_test5.py (MQTT 5.0) run N times (default
# 1) against each broker, a fresh broker process and data directory for every suite run, on a free loopback port.
# The suites' own command line (-p) clashes with unittest.main(), so a small wrapper written by this script imports each
# suite, sets its module's host, port and topics the way its __main__ block would, and runs one test per process (the
# suite's setUpClass clears retained messages and sessions first), so a test that hangs costs only itself.
#   ours:      iotrealtime-broker (Release) --Broker:MaxKeepAlive=60 --Broker:SubscribeDeniedReasonCode=128
#              "--Auth:Acl:0=deny subscribe test/nosubscribe" "--Auth:Acl:1=allow all #", other settings default
#   cluster3, cluster3-split, cluster3-rr: three such brokers as one cluster (Development membership, node-1 the
#              primary, each node its own free MQTT, HTTP and silo ports and data directory), started fresh for every
#              suite run; the suite starts once every node's /api/cluster shows the other two linked. They differ in
#              where the suites' connections go:
#      cluster3        every connection to node-1.
#      cluster3-split  pinned by client id: the suites' first client ("myclientid": aclient, and the flow-control tests'
#                      client) always on node-1, the second ("myclientid2": bclient) always on node-2, every other
#                      client (the cleanup's "clean retained", zero-length ids) on node-3. So in every test with both
#                      aclient and bclient, they are on different nodes (wills, retained clears, subscriptions and
#                      publications all cross), and the cleanup clears retained messages from a third node.
#      cluster3-rr     round robin: the k-th connection of each test process (cleanup included) goes to node
#                      ((k-1) mod 3)+1, so a client that reconnects lands on another node and its session moves there.
#   The suites take one host and port, so the wrapper replaces the port each client connects to (it wraps the suites'
#   Client.connect); no proxy sits in between. Each connection is logged (test, client id, node) and the results file
#   lists, per test, the nodes each client used and whether aclient and bclient were on different nodes.
#   The suites' Client.subscribe returns as soon as SUBSCRIBE is sent, and some tests publish from the other client at
#   once; the wrapper's subscribe returns once the SUBACK arrived (at most 5 s), as a client library's does, for every
#   broker. (A broker promises nothing for a publish that races an unacknowledged SUBSCRIBE; a cluster of ours sends
#   SUBACK once every node knows the new route.)
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
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
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
    [[ $b =~ ^(ours|cluster3|cluster3-split|cluster3-rr|mosquitto)$ ]] \
        || { echo "conformance: --brokers takes ours, cluster3, cluster3-split, cluster3-rr and/or mosquitto (was '$b')" >&2; exit 2; }
done
command -v python3 >/dev/null || { echo "conformance: python3 is required for the suites" >&2; exit 1; }
command -v jq >/dev/null || { echo "conformance: jq is required" >&2; exit 1; }
command -v curl >/dev/null || { echo "conformance: curl is required (cluster readiness)" >&2; exit 1; }
bench_check_tree
paho_commit=$(git -C "$paho" rev-parse --short HEAD 2>/dev/null || echo "not a git checkout")
paho_changes=$(git -C "$paho" status --porcelain 2>/dev/null | grep -v '__pycache__' || true)

bench_init_work conformance
bench_build
[[ $brokers == *mosquitto* ]] && bench_ensure_mosquitto
bench_results conformance

# The wrapper: imports one suite from the checkout and sets what its __main__ block sets; without a test name it lists
# the suite's tests, with one it runs that test and appends its outcome as a JSON line. PORTS is one port, or a cluster's
# node ports (comma-separated, node-1 first) with MODE single, split or rr choosing the node of each connection; every
# connection is appended to CONNECTIONS as a JSON line (test, phase, client id, node).
cat >"$work/run_suite.py" <<'PY'
import importlib, json, sys, threading, unittest
paho, name, ports, mode, out, connections = sys.argv[1], sys.argv[2], [int(p) for p in sys.argv[3].split(",")], sys.argv[4], sys.argv[5], sys.argv[6]
only = sys.argv[7] if len(sys.argv) > 7 else None
sys.path.insert(0, paho + "/interoperability")
suite_module = importlib.import_module(name)
suite_module.host = "127.0.0.1"
suite_module.port = ports[0]
suite_module.nosubscribe_topics = ("test/nosubscribe",)
if name == "client_test5":
    suite_module.topic_prefix = "client_test5/"
    suite_module.topics = [suite_module.topic_prefix + t for t in ["TopicA", "TopicA/B", "Topic/C", "TopicA/C", "/TopicA"]]
    suite_module.wildtopics = [suite_module.topic_prefix + t for t in ["TopicA/+", "+/C", "#", "/#", "/+", "+/+", "TopicA/#"]]
else:
    suite_module.topics = ("TopicA", "TopicA/B", "Topic/C", "TopicA/C", "/TopicA")
    suite_module.wildtopics = ("TopicA/+", "+/C", "#", "/#", "/+", "+/+", "TopicA/#")

# Which node a connection goes to: the suites pass host= and port= to Client.connect, so the port is replaced here.
log = open(connections, "a", buffering=1)
state = {"phase": "test", "count": 0}
def node_for(clientid):
    if mode == "split":
        return {"myclientid": 1, "myclientid2": 2}.get(clientid, 3)
    if mode == "rr":
        return state["count"] % len(ports) + 1
    return 1
client_class = suite_module.mqtt_client.Client
original_connect = client_class.connect
def connect(self, *args, **kwargs):
    clientid = self.clientid.decode("utf-8", "replace") if isinstance(self.clientid, bytes) else str(self.clientid)
    node = node_for(clientid)
    state["count"] += 1
    if len(args) > 1: args = (args[0], ports[node - 1]) + args[2:]
    else: kwargs["port"] = ports[node - 1]
    log.write(json.dumps({"test": only, "phase": state["phase"], "client": clientid, "node": node}) + "\n")
    return original_connect(self, *args, **kwargs)
client_class.connect = connect
# The suites' Client.subscribe sends SUBSCRIBE and returns at once, and some tests then publish from the other client
# straight away: whether that publish matches depends on which connection the broker reads first (one broker), or on
# the route reaching the publisher's node (a cluster). Here subscribe returns once its SUBACK arrived (at most 5 s), as
# an MQTT client library's does; a SUBACK promises the subscription is in place (in a cluster: known to every node).
class SubackWatch:
    def __init__(self, inner):
        self.inner, self.acked, self.cond = inner, set(), threading.Condition()
    def subscribed(self, msgid, data):
        with self.cond:
            self.acked.add(msgid); self.cond.notify_all()
        if hasattr(self.inner, "subscribed"): return self.inner.subscribed(msgid, data)
    def __getattr__(self, name):
        return getattr(self.inner, name)
original_register = client_class.registerCallback
def register_callback(self, callback):
    return original_register(self, SubackWatch(callback))
client_class.registerCallback = register_callback
original_subscribe = client_class.subscribe
def subscribe(self, *args, **kwargs):
    msgid = original_subscribe(self, *args, **kwargs)
    watch = self.callback
    if isinstance(watch, SubackWatch): # without a callback the client starts no receiver and sees no SUBACK
        with watch.cond:
            if watch.cond.wait_for(lambda: msgid in watch.acked, timeout=5): watch.acked.discard(msgid)
            else: log.write(json.dumps({"test": only, "phase": state["phase"], "suback_missing": msgid}) + "\n")
    return msgid
client_class.subscribe = subscribe
original_cleanup = suite_module.cleanup
def cleanup():
    state["phase"] = "cleanup"
    try: original_cleanup()
    finally: state["phase"] = "test"
suite_module.cleanup = cleanup
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

ours_args=(--Broker:MaxKeepAlive=60 --Broker:SubscribeDeniedReasonCode=128
    "--Auth:Acl:0=deny subscribe test/nosubscribe" "--Auth:Acl:1=allow all #")

start_broker() {
    local target=$1 port=$2 dir=$3
    case $target in
        ours)
            bench_start_ours "$port" "$dir" --Listeners:BindAddress=127.0.0.1 --Data:Directory="$dir/data" "${ours_args[@]}"
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

# Three nodes of ours as one cluster under DIR/node-i (Development membership, node-1 the primary), each with the
# settings of `ours`; sets node_ports (MQTT, node-1 first) and adds the PIDs to pids. Returns once each node listens
# and its /api/cluster shows the other two nodes linked (bounded: 120 s), or exits 1 naming the node.
cluster_nodes=3
start_cluster() {
    local dir=$1 i mqtt http silo primary_silo="" node_dir deadline linked
    node_ports=() node_http=() node_pids=()
    for ((i = 1; i <= cluster_nodes; i++)); do
        node_dir=$dir/node-$i
        mkdir -p "$node_dir/data"
        mqtt=$(free_port)
        http=$(free_port); while [[ $http == "$mqtt" ]]; do http=$(free_port); done
        silo=$(free_port); while [[ $silo == "$mqtt" || $silo == "$http" ]]; do silo=$(free_port); done
        [[ -n $primary_silo ]] || primary_silo=$silo
        dotnet "$broker_dll" --mqtt-port "$mqtt" --http-port "$http" --mqtts-port -1 --https-port -1 \
            --Listeners:BindAddress=127.0.0.1 --Data:Directory="$node_dir/data" "${ours_args[@]}" \
            --Cluster:Enabled=true --Cluster:NodeId="node-$i" --Cluster:ClusterId="conformance-$primary_silo" \
            --Cluster:Membership=Development --Cluster:SiloPort="$silo" --Cluster:PrimaryEndpoint="127.0.0.1:$primary_silo" \
            >"$node_dir/broker.log" 2>&1 &
        node_pids+=($!) node_ports+=("$mqtt") node_http+=("$http")
        pids+=($!)
        # The primary first: the others join through its silo.
        bench_wait_broker "node-$i" "$!" "$mqtt" "$node_dir"
    done
    for ((i = 1; i <= cluster_nodes; i++)); do
        deadline=$((SECONDS + 120))
        while true; do
            linked=$(curl -fsS "http://127.0.0.1:${node_http[i - 1]}/api/cluster" 2>/dev/null \
                | jq '[.nodes[] | select(.status == "linked")] | length' 2>/dev/null || echo 0)
            (( linked == cluster_nodes - 1 )) && break
            kill -0 "${node_pids[i - 1]}" 2>/dev/null || { tail -20 "$dir/node-$i/broker.log"; echo "conformance: node-$i exited" >&2; exit 1; }
            (( SECONDS < deadline )) || { tail -20 "$dir/node-$i/broker.log"; echo "conformance: node-$i did not link to the other nodes in 120 s" >&2; exit 1; }
            sleep 0.5
        done
    done
}

results=$work/results.jsonl
: >"$results"
for run in $(seq 1 "$runs"); do
    for suite in client_test client_test5; do
        for target in $brokers; do
            dir=$work/$run-$suite-$target
            mkdir -p "$dir"
            load=$(cut -d' ' -f1-3 /proc/loadavg)
            case $target in
                cluster3*)
                    start_cluster "$dir"
                    broker_pids=("${node_pids[@]}")
                    ports=$(IFS=,; echo "${node_ports[*]}")
                    case $target in cluster3) mode=single ;; cluster3-split) mode=split ;; cluster3-rr) mode=rr ;; esac
                    echo "== run $run, $suite: $target, nodes on 127.0.0.1:$ports, connections $mode (load average $load)"
                    ;;
                *)
                    port=$(free_port)
                    echo "== run $run, $suite: $target on 127.0.0.1:$port (load average $load)"
                    broker_pid=$(start_broker "$target" "$port" "$dir")
                    pids+=("$broker_pid")
                    bench_wait_broker "$target" "$broker_pid" "$port" "$dir"
                    broker_pids=("$broker_pid") ports=$port mode=single
                    ;;
            esac
            (cd "$dir" && timeout 60 python3 "$work/run_suite.py" "$paho" "$suite" "$ports" "$mode" "$dir/tests.jsonl" "$dir/connections.jsonl") >"$dir/suite.log" 2>&1 \
                || { tail -20 "$dir/suite.log"; echo "conformance: could not list the tests of $suite" >&2; exit 1; }
            : >"$dir/exits.tsv"
            for test in $(jq -r 'select(.outcome == "planned") | .test' "$dir/tests.jsonl"); do
                test_rc=0
                (cd "$dir" && timeout "$timeout_s" python3 "$work/run_suite.py" "$paho" "$suite" "$ports" "$mode" "$dir/tests.jsonl" "$dir/connections.jsonl" "$test") >>"$dir/suite.log" 2>&1 || test_rc=$?
                printf '%s\t%s\n' "$test" "$test_rc" >>"$dir/exits.tsv"
            done
            # Node-1 (the primary, which holds Development membership) last, so the others leave cleanly.
            for ((i = ${#broker_pids[@]} - 1; i >= 0; i--)); do stop_pid "${broker_pids[i]}"; done
            touch "$dir/connections.jsonl"
            python3 - "$dir/tests.jsonl" "$dir/exits.tsv" "$run" "$suite" "$target" "$load" "$timeout_s" "$dir/connections.jsonl" >>"$results" <<'PY'
import json, sys
path, exits, run, suite, target, load, limit, conns = sys.argv[1:9]
connections = {}
subacks_missing = {}
for line in open(conns):
    c = json.loads(line)
    if "suback_missing" in c: subacks_missing[c["test"]] = subacks_missing.get(c["test"], 0) + 1
    else: connections.setdefault(c["test"], []).append([c["phase"], c["client"], c["node"]])
outcomes, planned = {}, []
for line in open(path):
    r = json.loads(line)
    if r["outcome"] == "planned": planned.append(r["test"])
    else: outcomes[r["test"]] = r
codes = dict(l.rstrip("\n").split("\t") for l in open(exits) if l.strip())
for test in planned:
    rc = codes.get(test, "?")
    r = outcomes.get(test, {"outcome": f"timeout (over {limit} s)" if rc == "124" else f"no result (exit {rc})", "detail": ""})
    print(json.dumps({"run": int(run), "suite": suite, "broker": target, "test": test, "outcome": r["outcome"], "detail": r.get("detail", ""), "load": load, "connections": connections.get(test, []), "subacks_missing": subacks_missing.get(test, 0)}))
PY
            passed=$(grep -c '"outcome": "pass"' "$dir/tests.jsonl" || true)
            total=$(grep -c '"outcome": "planned"' "$dir/tests.jsonl" || true)
            echo "   $passed/$total passed"
            sleep 1
        done
    done
done

{
    bench_header "Eclipse Paho interoperability suites (client_test.py MQTT 3.1.1, client_test5.py MQTT 5.0): $brokers"
    echo "# paho.mqtt.testing checkout: $paho at $paho_commit$([[ -n $paho_changes ]] && echo ' (with local changes)')"
    echo "# ours: iotrealtime-broker --Broker:MaxKeepAlive=60 --Broker:SubscribeDeniedReasonCode=128 \"--Auth:Acl:0=deny subscribe test/nosubscribe\" \"--Auth:Acl:1=allow all #\" (fresh data dir, other settings default)"
    echo "# mosquitto: ${bench_mosquitto_base[*]}, max_keepalive 60, acl_file: topic deny test/nosubscribe / topic readwrite #"
    echo "# cluster3, cluster3-split, cluster3-rr: $cluster_nodes nodes of ours with the settings above, --Cluster:Enabled=true, Development membership (node-1 the primary), fresh data dirs; the suite starts once every node's /api/cluster shows the others linked"
    echo "#   cluster3: every connection to node-1; cluster3-split: aclient (\"myclientid\") on node-1, bclient (\"myclientid2\") on node-2, every other client on node-3;"
    echo "#   cluster3-rr: the k-th connection of each test process (cleanup included) to node ((k-1) mod $cluster_nodes)+1. The wrapper sets the port of each Client.connect (no proxy)"
    echo "# the wrapper's Client.subscribe returns once its SUBACK arrived (at most 5 s; the suites' own returns at once), so a test's next publish from another client finds the subscription in place"
    echo "# each suite run: a fresh broker (or cluster) on free loopback ports; one process per test (at most $timeout_s s each); host, port and topics set by a wrapper as the suite's __main__ sets them"
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
# Where the connections of each test went (its cleanup apart), from the wrapper's log: aclient is "myclientid" (also the
# flow-control tests' own client), bclient "myclientid2".
def who(client):
    return {"myclientid": "a", "myclientid2": "b"}.get(client, "other")
for b in brokers:
    if b not in ("cluster3-split", "cluster3-rr"): continue
    print(f"{b}: nodes of each connection per test (run 1; cleanup left out), in order; a = aclient, b = bclient")
    for suite in ("client_test", "client_test5"):
        sel = [r for r in rows if r["suite"] == suite and r["broker"] == b and r["run"] == 1]
        two, apart, moves = 0, 0, 0
        for r in sel:
            conns = [(who(c), n) for phase, c, n in r["connections"] if phase == "test"]
            seq = " ".join(f"{w}@{n}" for w, n in conns)
            a_nodes = {n for w, n in conns if w == "a"}
            b_nodes = {n for w, n in conns if w == "b"}
            last = {}
            for w, n in conns:
                if w != "other" and w in last and last[w] != n: moves += 1
                last[w] = n
            verdict = ""
            if a_nodes and b_nodes:
                two += 1
                if not (a_nodes & b_nodes):
                    apart += 1; verdict = "  (a and b on different nodes)"
                else:
                    verdict = "  (a and b share a node at some point)"
            print(f"  {suite}.{r['test']:<34} {seq}{verdict}")
        print(f"  {suite}: {two} tests connect both aclient and bclient; in {apart} of them a and b are never on the same node; {moves} reconnects of a or b landed on another node than that client's previous connection")
    print()
missing = [r for r in rows if r.get("subacks_missing")]
print(f"SUBSCRIBEs whose SUBACK did not come within 5 s (the wrapper then went on): {sum(r['subacks_missing'] for r in missing)}"
      + "".join(f"; {r['run']} {r['suite']} {r['broker']} {r['test']}: {r['subacks_missing']}" for r in missing))
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
