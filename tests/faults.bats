#!/usr/bin/env bats
# Faults around the executor: broken configuration, a read-only or full state
# directory.  Each request still gets a defined answer, and nothing already
# stored is lost.

setup_file() { load helpers; start_server; }
teardown_file() { load helpers; stop_server; }
setup() { load helpers; }
teardown() {
    [ -f "$BATS_TEST_TMPDIR/alt.pid" ] && kill "$(cat "$BATS_TEST_TMPDIR/alt.pid")" 2>/dev/null
    if [ -n "${ALT_MNT:-}" ]; then umount -l "$ALT_MNT" 2>/dev/null; fi
    if [ -n "${HOSTILE_DIR:-}" ]; then rm -rf "$HOSTILE_DIR"; fi
    true
}

# alt_server ENV=VALUE... -- [wrapper...]: a second server with a changed
# environment, optionally started through a wrapper (e.g. a mount namespace).
alt_server() {
    local envs=() wrap=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
    [ "${1:-}" = -- ] && shift
    wrap=("$@")
    ALT_PORT=$((PORT + 2))
    "${wrap[@]}" systemd-socket-activate --inetd -a -l "127.0.0.1:$ALT_PORT" \
        -E PYEXEC_KEYS -E PYEXEC_CONFIG -E PYEXEC_STATE -E ASAN_OPTIONS -E UBSAN_OPTIONS \
        env "${envs[@]}" "$PYEXEC_BIN" >"$BATS_TEST_TMPDIR/alt.log" 2>&1 3>&- &
    echo $! > "$BATS_TEST_TMPDIR/alt.pid"
    URL="http://127.0.0.1:$ALT_PORT"
    SRV_LOG="$BATS_TEST_TMPDIR/alt.log"
    for i in $(seq 1 50); do curl -s -o /dev/null "$URL/health" && return 0; sleep 0.05; done
    return 1
}

@test "an invalid config file: 503 for every request, file:line in the log" {
    printf '[test]\ntimeout_ms = banana\n' > "$BATS_TEST_TMPDIR/bad.conf"
    alt_server PYEXEC_CONFIG="$BATS_TEST_TMPDIR/bad.conf"
    post_execute '{"code": "result = 1"}'
    assert_equal "$STATUS" 503
    assert_equal "$(json_get "$BODY" 'j["error"]["type"]')" ServiceUnavailable
    grep -q "bad.conf:2: timeout_ms must be an integer" "$SRV_LOG"
    run curl -s -w ' %{http_code}' "$URL/health"
    assert_output --regexp ' 503$'
}

@test "unknown settings and sections are refused, not ignored" {
    printf '[test]\ntimeout = 5\n' > "$BATS_TEST_TMPDIR/bad.conf"
    alt_server PYEXEC_CONFIG="$BATS_TEST_TMPDIR/bad.conf"
    post_execute '{"code": "result = 1"}'
    assert_equal "$STATUS" 503
    grep -q 'unknown setting "timeout"' "$SRV_LOG"
    kill "$(cat "$BATS_TEST_TMPDIR/alt.pid")"
    printf '[staging]\n' > "$BATS_TEST_TMPDIR/bad2.conf"
    alt_server PYEXEC_CONFIG="$BATS_TEST_TMPDIR/bad2.conf"
    post_execute '{"code": "result = 1"}'
    assert_equal "$STATUS" 503
    grep -q 'unknown section \[staging\]' "$SRV_LOG"
}

@test "a named config file that is missing: 503" {
    alt_server PYEXEC_CONFIG=/nonexistent/pyexec.conf
    post_execute '{"code": "result = 1"}'
    assert_equal "$STATUS" 503
    grep -q "cannot open config /nonexistent/pyexec.conf" "$SRV_LOG"
}

@test "the config's limits apply per environment" {
    printf '[test]\ntimeout_ms = 300\n[prod]\ntimeout_ms = 1200\n' > "$BATS_TEST_TMPDIR/env.conf"
    alt_server PYEXEC_CONFIG="$BATS_TEST_TMPDIR/env.conf"
    post_execute '{"code": "while True: pass"}'
    [[ "$(json_get "$BODY" 'j["error"]["message"]')" == *"300 ms"* ]]
    post_execute '{"code": "while True: pass"}' "$PROD_KEY"
    [[ "$(json_get "$BODY" 'j["error"]["message"]')" == *"1200 ms"* ]]
    post_execute '{"code": "x = 1", "limits": {"timeout_ms": 301}}'
    assert_equal "$STATUS" 422
    [[ "$(json_get "$BODY" 'j["error"]["message"]')" == *"exceeds this key's maximum of 300"* ]]
}

@test "a read-only state directory: 503 with a log line; stored counts intact" {
    [ "$(id -u)" = 0 ] || skip "needs root for a read-only bind mount"
    post_execute '{"code": "result = 1"}'
    before=$(cd "$PYEXEC_STATE" && find . -type f -exec sha256sum {} + | sort)
    # The server sees the state directory read-only in its own mount namespace.
    alt_server -- unshare -m sh -c 'mount --bind "$0" "$0" && mount -o remount,ro,bind "$0" && exec "$@"' "$PYEXEC_STATE"
    post_execute '{"code": "result = 1"}'
    assert_equal "$STATUS" 503
    [[ "$(json_get "$BODY" 'j["error"]["message"]')" == *"usage accounting is unavailable"* ]]
    grep -q "usage state $PYEXEC_STATE" "$SRV_LOG"
    run curl -s -w ' %{http_code}' "$URL/health"
    assert_output --partial "not ready: usage state is unavailable"
    assert_output --regexp ' 503$'
    after=$(cd "$PYEXEC_STATE" && find . -type f -exec sha256sum {} + | sort)
    assert_equal "$after" "$before"
}

@test "a full disk: known clients keep counting, new ones get 503, nothing lost" {
    [ "$(id -u)" = 0 ] || skip "needs root for a small tmpfs"
    ALT_MNT="$BATS_TEST_TMPDIR/full"
    mkdir -p "$ALT_MNT"
    mount -t tmpfs -o size=64k tmpfs "$ALT_MNT"
    # A client that has a record already, then fill the disk.
    PYEXEC_STATE="$ALT_MNT" alt_server PYEXEC_STATE="$ALT_MNT"
    post_execute '{"code": "result = 1"}'
    assert_equal "$STATUS" 200
    dd if=/dev/zero of="$ALT_MNT/filler" bs=4k count=1000 2>/dev/null || true
    post_execute '{"code": "result = 2"}'
    assert_equal "$STATUS" 200
    newcomer=$("$MANAGE_KEYS" add --name newcomer --env test 2>/dev/null)
    post_execute '{"code": "result = 3"}' "$newcomer"
    [ "$STATUS" = 503 ] || [ "$STATUS" = 200 ]
    run "$MANAGE_KEYS" usage --json --state "$ALT_MNT"
    assert_success
    n=$(echo "$output" | /usr/bin/python3 -c 'import json,sys; print([e["requests"] for e in json.load(sys.stdin) if e["name"] == "bats test"][0])')
    assert_equal "$n" 2
}

# hostile_server: an alternate server whose worker program is
# tests/hostile-worker.c, a stand-in for a worker taken over entirely.  The
# supervisor opens it while root and runs it with fexecve.
hostile_server() {
    HOSTILE_DIR=$(mktemp -d /tmp/pyexec-hostile.XXXXXX)
    chmod 711 "$HOSTILE_DIR"
    cp "$PYEXEC_BIN" "$HOSTILE_DIR/pyexec"
    cc -O2 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -I"$ROOT/src" \
        -o "$HOSTILE_DIR/pyexec-worker" "$ROOT/tests/hostile-worker.c"
    chmod 755 "$HOSTILE_DIR/pyexec" "$HOSTILE_DIR/pyexec-worker"
    PYEXEC_BIN="$HOSTILE_DIR/pyexec" alt_server
}

# Children of the alternate server (its supervisors and their workers).
alt_processes() {
    local sup
    for sup in $(pgrep -P "$(cat "$BATS_TEST_TMPDIR/alt.pid")"); do
        echo "$sup"
        pgrep -P "$sup" || true
    done
}

@test "a taken-over worker cannot make the supervisor read outside its report" {
    hostile_server
    post_execute '{"code": "lengths", "limits": {"timeout_ms": 1000, "output_bytes": 1000, "result_bytes": 1000}}'
    assert_equal "$STATUS" 200
    # Lengths and area sizes are the supervisor's own: 1000 bytes of output
    # and of result, however large the worker claimed them.
    [ "${#BODY}" -lt 3000 ]
    assert_equal "$(json_get "$BODY" 'len(j["output"])')" 1000
    assert_equal "$(json_get "$BODY" 'len(str(j["result"]))')" 1000
    run curl -s "$URL/health"
    assert_output '{"status":"ok"}'
}

@test "a worker that lingers after reporting is killed at its wall limit" {
    hostile_server
    local t0=$SECONDS
    post_execute '{"code": "linger", "limits": {"timeout_ms": 1000}}'
    assert_equal "$STATUS" 200
    assert_equal "$(json_get "$BODY" 'j["result"]')" 42
    # Answered at once; the supervisor then waits no longer than the wall
    # limit (plus its 250 ms backstop) before it kills the worker and exits.
    local left=""
    for i in $(seq 1 60); do
        left=$(alt_processes)
        [ -z "$left" ] && break
        sleep 0.1
    done
    assert_equal "$left" ""
    [ $((SECONDS - t0)) -le 5 ]
    grep -q "outlived its wall timer after reporting; killing it" "$SRV_LOG"
}

@test "a taken-over worker can neither shrink the shared report nor forge log lines" {
    hostile_server
    post_execute '{"code": "shrink", "limits": {"timeout_ms": 1000}}'
    assert_equal "$STATUS" 200
    assert_equal "$(json_get "$BODY" 'j["result"]')" 42
    post_execute '{"code": "inject", "limits": {"timeout_ms": 1000}}'
    assert_equal "$STATUS" 500
    assert_equal "$(json_get "$BODY" 'j["error"]["type"]')" InternalError
    post_execute '{"code": "injectmsg", "limits": {"timeout_ms": 1000}}'
    assert_equal "$STATUS" 500
    assert_equal "$(json_get "$BODY" 'j["error"]["type"]')" InternalError
    sleep 0.2
    run grep -c -E '^(<[0-9]>)?pyexec: request_id=forged' "$SRV_LOG"
    assert_output 0
    grep -q '^<3>pyexec: error: worker failed: broken?pyexec: request_id=forged' "$SRV_LOG"
}
