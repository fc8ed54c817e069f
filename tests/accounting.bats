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
