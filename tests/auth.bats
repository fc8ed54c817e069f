#!/usr/bin/env bats
# Authentication happens before any Python: same 401 for every bad key.

setup_file() { load helpers; start_server; }
teardown_file() { load helpers; stop_server; }
setup() { load helpers; }

@test "missing, empty, unknown and malformed keys all get the same 401" {
    local bodies=()
    run curl -s -w ' %{http_code}' -X POST "$URL/execute" -H 'Content-Type: application/json' -d '{"code": "result=1"}'
    assert_output --regexp ' 401$'
    local nl=$'\n'
    bodies+=("${output//$nl/}")
    for k in "" "sk_test_nope" "$(printf 'x%.0s' $(seq 1 500))" "${KEY%?}g" "${KEY}x" "$(echo "$KEY" | tr a-f A-F)"; do
        post_execute '{"code": "result = 1"}' "$k"
        assert_equal "$STATUS" 401
        bodies+=("$BODY 401")
    done
    for b in "${bodies[@]}"; do
        assert_equal "$b" '{"success":false,"error":{"type":"Unauthorized","message":"missing, unknown or revoked API key"}} 401'
    done
}

@test "a rejected key starts no worker (no stats, no Python)" {
    post_execute '{"code": "while True: pass"}' "sk_test_bogus"
    assert_equal "$STATUS" 401
    [[ "$BODY" != *stats* ]]
    grep -q 'status=401 outcome=Unauthorized error_type=- wall_ms=0 cpu_ms=0' "$SRV_LOG"
}

@test "a bad key is refused before the body is read (no 413 leak of limits)" {
    run raw_request 'POST /execute HTTP/1.1\r\nHost: x\r\nX-API-Key: bogus\r\nContent-Type: application/json\r\nContent-Length: 99999999\r\n\r\n' --no-shutdown
    assert_output --partial "HTTP/1.1 401"
}

@test "a revoked key stops working at once; by id and by key" {
    k1=$("$MANAGE_KEYS" add --name "to revoke" --env test 2>/dev/null)
    k2=$("$MANAGE_KEYS" add --name "to revoke 2" --env prod 2>/dev/null)
    post_execute '{"code": "result = 1"}' "$k1"
    assert_equal "$STATUS" 200
    run "$MANAGE_KEYS" revoke "$k1"
    assert_success
    post_execute '{"code": "result = 1"}' "$k1"
    assert_equal "$STATUS" 401
    id=$("$MANAGE_KEYS" list --json | /usr/bin/python3 -c 'import json,sys; print([k["id"] for k in json.load(sys.stdin) if k["name"] == "to revoke 2"][0])')
    "$MANAGE_KEYS" revoke "$id"
    post_execute '{"code": "result = 1"}' "$k2"
    assert_equal "$STATUS" 401
    post_execute '{"code": "result = 1"}'
    assert_equal "$STATUS" 200
}

@test "the keys file holds no key, only hashes" {
    run grep -F "$KEY" "$PYEXEC_KEYS"
    assert_failure
    grep -Eq '"hash":[[:space:]]*"sha256:[0-9a-f]{64}"' "$PYEXEC_KEYS"
}

@test "a missing keys file is 503 with a JSON error and a log line" {
    PYEXEC_KEYS=/nonexistent/keys.json start_server_alt
    post_execute '{"code": "result = 1"}'
    assert_equal "$STATUS" 503
    assert_equal "$(json_get "$BODY" 'j["error"]["type"]')" ServiceUnavailable
    grep -q "keys file /nonexistent/keys.json" "$SRV_LOG"
}

@test "a corrupt keys file is 503, never a crash" {
    printf '{"version": 1, "keys": [{"id": ' > "$BATS_TEST_TMPDIR/corrupt.json"
    PYEXEC_KEYS="$BATS_TEST_TMPDIR/corrupt.json" start_server_alt
    post_execute '{"code": "result = 1"}'
    assert_equal "$STATUS" 503
    # /health says the host is not ready, so a load balancer takes it out.
    run curl -s -w ' %{http_code}' "$URL/health"
    assert_output --partial '"message":"not ready: API keys are unavailable"'
    assert_output --regexp ' 503$'
}

@test "an unreadable keys file is 503" {
    cp "$PYEXEC_KEYS" "$BATS_TEST_TMPDIR/unreadable.json"
    chmod 000 "$BATS_TEST_TMPDIR/unreadable.json"
    # root reads through mode 000; a directory in the way is unreadable for anyone.
    PYEXEC_KEYS="$BATS_TEST_TMPDIR/unreadable.json/x" start_server_alt
    post_execute '{"code": "result = 1"}'
    assert_equal "$STATUS" 503
}

# A second server with a different keys file, for this test only.
start_server_alt() {
    local keys="$PYEXEC_KEYS"
    systemd-socket-activate --inetd -a -l "127.0.0.1:$((PORT + 1))" \
        -E PYEXEC_CONFIG -E PYEXEC_STATE -E ASAN_OPTIONS -E UBSAN_OPTIONS \
        env PYEXEC_KEYS="$keys" "$PYEXEC_BIN" >"$BATS_TEST_TMPDIR/alt.log" 2>&1 3>&- &
    echo $! > "$BATS_TEST_TMPDIR/alt.pid"
    URL="http://127.0.0.1:$((PORT + 1))"
    SRV_LOG="$BATS_TEST_TMPDIR/alt.log"
    for i in $(seq 1 50); do curl -s -o /dev/null "$URL/health" && return 0; sleep 0.05; done
    return 1
}

teardown() {
    [ -f "$BATS_TEST_TMPDIR/alt.pid" ] && kill "$(cat "$BATS_TEST_TMPDIR/alt.pid")" 2>/dev/null
    true
}

@test "Authorization: Bearer is an equal way to present the key, scheme in any case" {
    for scheme in Bearer bearer BEARER; do
        run curl -s -w ' %{http_code}' -H "Authorization: $scheme $KEY" \
            -H 'Content-Type: application/json' -d '{"code":"result = 6*7"}' "$URL/execute"
        assert_output --partial '"result":42'
        assert_output --regexp ' 200$'
    done
    run curl -s -w ' %{http_code}' -H "Authorization: Bearer sk_test_nope" \
        -H 'Content-Type: application/json' -d '{"code":"1"}' "$URL/execute"
    assert_output --partial '{"success":false,"error":{"type":"Unauthorized","message":"missing, unknown or revoked API key"}}'
    assert_output --regexp ' 401$'
}

@test "Bearer works on /metrics too" {
    admin=$("$MANAGE_KEYS" add --name "bearer admin" --env test --scope admin 2>/dev/null)
    run curl -s -w ' %{http_code}' -H "Authorization: Bearer $admin" "$URL/metrics"
    assert_output --partial "pyexec_requests_total"
    assert_output --regexp ' 200$'
    run curl -s -w ' %{http_code}' "$URL/metrics"
    assert_output --regexp ' 401$'
}

@test "X-API-Key and Bearer together: same key is fine, different keys are 400" {
    run curl -s -w ' %{http_code}' -H "X-API-Key: $KEY" -H "Authorization: Bearer $KEY" \
        -H 'Content-Type: application/json' -d '{"code":"result = 1"}' "$URL/execute"
    assert_output --regexp ' 200$'
    run curl -s -w ' %{http_code}' -H "X-API-Key: $KEY" -H "Authorization: Bearer $PROD_KEY" \
        -H 'Content-Type: application/json' -d '{"code":"result = 1"}' "$URL/execute"
    assert_output --partial '{"success":false,"error":{"type":"BadRequest","message":"X-API-Key and Authorization: Bearer carry different keys"}}'
    assert_output --regexp ' 400$'
}

@test "another Authorization scheme is 401 saying only Bearer is understood" {
    run curl -s -w ' %{http_code}' -u "user:$KEY" \
        -H 'Content-Type: application/json' -d '{"code":"result = 1"}' "$URL/execute"
    assert_output --partial 'only the Bearer scheme'
    assert_output --regexp ' 401$'
    run curl -s -w ' %{http_code}' -H "Authorization: Bearer" \
        -H 'Content-Type: application/json' -d '{"code":"1"}' "$URL/execute"
    assert_output --regexp ' 401$'
    run curl -s -w ' %{http_code}' -u "user:x" "$URL/health"
    assert_output --regexp ' 200$'
}
