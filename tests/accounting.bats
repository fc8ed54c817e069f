#!/usr/bin/env bats
# Clients that leave early, usage counters that add up, and the log format.

load helpers

setup_file() {
    start_server $'[test]\nresult_bytes = 8388608\ntimeout_ms = 60000\ncpu_ms = 60000'
}

teardown_file() {
    stop_server
}

# usage_of FIELD: the test key's counter, from manage-keys usage --json.
usage_of() {
    "$MANAGE_KEYS" usage --json |
        /usr/bin/python3 -c 'import json, sys
print(next(k for k in json.load(sys.stdin) if k["name"] == "bats test")[sys.argv[1]])' "$1"
}

# wait_log PATTERN: wait up to 10 s for a server log line matching PATTERN.
wait_log() {
    local i
    for i in $(seq 1 100); do
        grep -q -E "$1" "$SRV_LOG" && return 0
        sleep 0.1
    done
    return 1
}

# workers_running: how many processes run this build's worker program.
workers_running() {
    local worker p n=0
    worker=$(readlink -f "$(dirname "$PYEXEC_BIN")/pyexec-worker")
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/exe" 2>/dev/null)" = "$worker" ] && n=$((n + 1))
    done
    echo "$n"
}

@test "a client that resets the connection during a large answer is logged and counted as client_gone" {
    local before
    before=$(usage_of client_gone)
    run timeout 30 /usr/bin/python3 "$BATS_TEST_DIRNAME/hangup.py" "$PORT" "$KEY" \
        'result = "x" * 3000000' write
    assert_success
    assert_output 'HTTP/1.1 200 OK'
    wait_log 'status=200 outcome=client_gone'
    [ "$(usage_of client_gone)" -eq $((before + 1)) ]
    "$MANAGE_KEYS" usage | grep -q GONE
    # The process was not killed by SIGPIPE: it went on to log and exit.
    assert_server_healthy
}

@test "a client that closes mid-execution gets its worker killed and is counted as client_gone" {
    local before start
    before=$(usage_of client_gone)
    : > "$BATS_FILE_TMPDIR/mark"
    start=$(date +%s%N)
    run timeout 30 /usr/bin/python3 "$BATS_TEST_DIRNAME/hangup.py" "$PORT" "$KEY" \
        'while True: pass' exec
    assert_success
    wait_log 'outcome=client_gone error_type=ClientGone'
    # Well before the 60 s limit (and the 2 s default).
    [ $(( ($(date +%s%N) - start) / 1000000 )) -lt 3000 ]
    grep 'error_type=ClientGone' "$SRV_LOG" | grep -q 'status=200'
    [ "$(usage_of client_gone)" -eq $((before + 1)) ]
    sleep 0.2
    [ "$(workers_running)" = 0 ]
}

# The outcome counters: every admitted request lands in exactly one.
OUTCOMES='successes user_errors timeouts memory_errors output_limits internal_errors refused client_gone'

@test "refusals after authentication are counted: the outcome counters add up to requests everywhere" {
    k=$("$MANAGE_KEYS" add --name summed --env test 2>/dev/null)
    post_execute '{"code": ' "$k"
    assert_equal "$STATUS" 400
    run curl -s -o /dev/null -w '%{http_code}' -X POST "$URL/execute" -H "X-API-Key: $k" \
        --data-binary '{"code": "result = 1"}'
    assert_output 415
    post_execute '{"cod": "result = 1"}' "$k"
    [[ "$STATUS" == 4* ]]
    post_execute '{"code": "result = 1"}' "$k"
    assert_equal "$STATUS" 200
    # manage-keys usage --json
    run "$MANAGE_KEYS" usage --json
    assert_success
    run /usr/bin/python3 -c 'import json, sys
e = next(e for e in json.loads(sys.argv[1]) if e["name"] == "summed")
print(e["requests"], e["successes"], e["refused"], sum(e[f] for f in sys.argv[2].split()))' \
        "$output" "$OUTCOMES"
    assert_output '4 1 3 4'
    # manage-keys usage (the table)
    run "$MANAGE_KEYS" usage
    header=$(echo "$output" | head -n 1)
    row=$(echo "$output" | grep ' summed$')
    run /usr/bin/python3 -c 'import sys
cols = dict(zip(sys.argv[1].split(), sys.argv[2].split()))
print(cols["REQUESTS"], sum(int(cols[c]) for c in "SUCCESSES USER_ERR TIMEOUTS MEM_ERR OUTPUT_LIM INTERNAL_ERR REFUSED GONE".split()))' \
        "$header" "$row"
    assert_output '4 4'
    # /metrics
    admin=$("$MANAGE_KEYS" add --name sums-ops --env prod --scope admin 2>/dev/null)
    run curl -s -H "X-API-Key: $admin" "$URL/metrics"
    assert_success
    run /usr/bin/python3 -c 'import re, sys
v = {m[0]: int(m[1]) for m in re.findall(r"pyexec_(\w+)_total\{[^}]*name=\"summed\"[^}]*\} (\d+)\n", sys.argv[1])}
print(v["requests"], v["refused"], sum(v[f] for f in sys.argv[2].split()))' "$output" "$OUTCOMES"
    assert_output '4 3 4'
}

@test "refusals after authentication use the rate allowance; refusals before it do not" {
    k=$("$MANAGE_KEYS" add --name rated --env test --rate 2/min 2>/dev/null)
    post_execute '{"code": "result = 1"}' "sk_test_notakey"
    assert_equal "$STATUS" 401
    post_execute '{"code": ' "$k"
    assert_equal "$STATUS" 400
    post_execute '{"cod": 1}' "$k"
    [[ "$STATUS" == 4* ]]
    post_execute '{"code": "result = 1"}' "$k"
    assert_equal "$STATUS" 429
    run "$MANAGE_KEYS" usage --json
    run /usr/bin/python3 -c 'import json, sys
e = next(e for e in json.loads(sys.argv[1]) if e["name"] == "rated")
print(e["requests"], e["refused"], e["rate_limited"])' "$output"
    assert_output '2 2 1'
}

@test "request lines carry the peer address and priority <6>; errors and 5xx lines <3>" {
    run curl -s -o /dev/null --local-port 41000-41999 -w '%{local_port}' -H "X-Request-Id: peer-check" "$URL/health"
    assert_success
    local port=$output
    wait_log 'request_id=peer-check '
    grep 'request_id=peer-check ' "$SRV_LOG" | grep -q -E "^<6>pyexec: request_id=peer-check time=[^ ]+ peer=127\.0\.0\.1:$port "
    # A broken config (read per request): an error line and a 503 line, both <3>.
    cp "$PYEXEC_CONFIG" "$BATS_FILE_TMPDIR/good.conf"
    printf '[test]\ntimeout_ms = soon\n' > "$PYEXEC_CONFIG"
    run curl -s -o /dev/null -w '%{http_code}' "$URL/health"
    cp "$BATS_FILE_TMPDIR/good.conf" "$PYEXEC_CONFIG"
    assert_output 503
    wait_log ' status=503 '
    grep -q -E '^<3>pyexec: error: .*timeout_ms must be an integer' "$SRV_LOG"
    grep -q -E '^<3>pyexec: request_id=[^ ]+ .* status=503 ' "$SRV_LOG"
    # Every line pyexec writes has a priority prefix.
    run grep -v -E '^(<[0-7]>|Listening on |Communication attempt on fd|Connection from |Spawned |Execing |Child [0-9]+ )' "$SRV_LOG"
    assert_output ''
}
