#!/usr/bin/env bats
# Per-client rate and concurrency limits and the server-wide cap, held in the
# state directory across one-process-per-connection; usage and /metrics.

setup_file() {
    load helpers
    start_server $'[global]\nmax_concurrent = 200\n[test]\nrate_limit = 1000\nconcurrency = 200'
}
teardown_file() { load helpers; stop_server; }
setup() { load helpers; }

# fire N KEY BODY: N requests at once; prints one status code per line.
fire() {
    local n=$1 key=$2 body=$3 i pids=()
    for i in $(seq 1 "$n"); do
        curl -s -o /dev/null -w '%{http_code}\n' -m 60 -X POST "$URL/execute" \
            -H "X-API-Key: $key" -H 'Content-Type: application/json' -d "$body" &
        pids+=($!)
    done
    wait "${pids[@]}"   # not a bare wait: a restarted server is our child too
}

@test "100 requests at once with a limit of 40 get exactly 40 x 200 and 60 x 429" {
    k=$("$MANAGE_KEYS" add --name burst --env test --rate 40/min --concurrency 200 2>/dev/null)
    other=$("$MANAGE_KEYS" add --name bystander --env test --rate 40/min 2>/dev/null)
    fire 100 "$k" '{"code": "result = 1"}' > "$BATS_TEST_TMPDIR/codes"
    run grep -c '^200$' "$BATS_TEST_TMPDIR/codes"
    assert_output 40
    run grep -c '^429$' "$BATS_TEST_TMPDIR/codes"
    assert_output 60
    # A second client is unaffected.
    post_execute '{"code": "result = 2"}' "$other"
    assert_equal "$STATUS" 200
}

@test "429 carries Retry-After, rate headers and a JSON error naming the limit" {
    k=$("$MANAGE_KEYS" add --name small --env test --rate 2/min 2>/dev/null)
    run curl -s -i -X POST "$URL/execute" -H "X-API-Key: $k" -H 'Content-Type: application/json' -d '{"code": "result = 1"}'
    assert_output --partial "RateLimit-Limit: 2"
    assert_output --partial "RateLimit-Remaining: 1"
    assert_output --regexp "RateLimit-Reset: [0-9]+"
    curl -s -o /dev/null -X POST "$URL/execute" -H "X-API-Key: $k" -H 'Content-Type: application/json' -d '{"code": "result = 1"}'
    run curl -s -i -X POST "$URL/execute" -H "X-API-Key: $k" -H 'Content-Type: application/json' -d '{"code": "result = 1"}'
    assert_output --partial "HTTP/1.1 429"
    assert_output --regexp "Retry-After: [0-9]+"
    assert_output --partial "RateLimit-Remaining: 0"
    assert_output --partial '"type":"TooManyRequests"'
    assert_output --partial 'rate limit: 2 requests per 60 s'
}

@test "every authenticated answer carries the rate headers, errors included" {
    run curl -s -i -X POST "$URL/execute" -H "X-API-Key: $KEY" -H 'Content-Type: application/json' -d '{"code": "1/0"}'
    assert_output --partial "RateLimit-Limit: 1000"
    run curl -s -i -X POST "$URL/execute" -H "X-API-Key: $KEY" -H 'Content-Type: application/json' -d '{"code": '
    assert_output --partial "HTTP/1.1 400"
    assert_output --partial "RateLimit-Limit: 1000"
}

@test "the concurrency limit answers 429 while slots are taken" {
    k=$("$MANAGE_KEYS" add --name conc --env test --concurrency 2 2>/dev/null)
    fire 6 "$k" '{"code": "while True: pass", "limits": {"timeout_ms": 1500}}' > "$BATS_TEST_TMPDIR/codes"
    run grep -c '^200$' "$BATS_TEST_TMPDIR/codes"
    assert_output 2
    run grep -c '^429$' "$BATS_TEST_TMPDIR/codes"
    assert_output 4
    post_execute '{"code": "result = 1"}' "$k"
    assert_equal "$STATUS" 200
}

@test "a slot held by a killed process comes back" {
    k=$("$MANAGE_KEYS" add --name killed --env test --concurrency 1 2>/dev/null)
    local curl_pid sup attempt
    for attempt in 1 2 3 4 5; do
        curl -s -o /dev/null -m 30 -X POST "$URL/execute" -H "X-API-Key: $k" \
            -H 'Content-Type: application/json' -d '{"code": "while True: pass"}' &
        curl_pid=$!
        sleep 0.7   # let it take the only slot
        post_execute '{"code": "result = 1"}' "$k"
        [ "$STATUS" = 429 ] && break
        wait "$curl_pid" || true
    done
    assert_equal "$STATUS" 429
    # kill -9 the supervisor that holds the slot (the one with a worker
    # child). Others may be exiting right now (the 429 answer's process),
    # so a supervisor gone by the time of the kill is not a failure.
    local sups workers holders
    sups=$(pgrep -P "$SRV_PID" || true)
    holders=$(for sup in $sups; do if pgrep -P "$sup" >/dev/null; then echo "$sup"; fi; done)
    workers=$(for sup in $holders; do pgrep -P "$sup" || true; done)
    [ -n "$holders" ] && [ -n "$workers" ]
    for sup in $holders; do kill -9 "$sup"; done
    wait "$curl_pid" || true
    # The orphaned workers die with their supervisor (parent-death signal),
    # long before their own 2 s wall timer.
    for i in $(seq 1 20); do
        alive=$(for w in $workers; do
                    st=$(ps -o stat= -p "$w" || true)
                    case "$st" in "" | Z*) ;; *) echo "$w" ;; esac
                done)
        [ -z "$alive" ] && break
        sleep 0.05
    done
    assert_equal "$alive" ""
    post_execute '{"code": "result = 1"}' "$k"
    assert_equal "$STATUS" 200
}

@test "the server-wide cap answers 503 with Retry-After" {
    stop_server
    start_server $'[global]\nmax_concurrent = 1'
    fire 3 "$KEY" '{"code": "while True: pass", "limits": {"timeout_ms": 1500}}' > "$BATS_TEST_TMPDIR/codes"
    run grep -c '^503$' "$BATS_TEST_TMPDIR/codes"
    assert_output 2
    run curl -s -i -X POST "$URL/execute" -H "X-API-Key: $KEY" -H 'Content-Type: application/json' -d '{"code": "result = 7"}'
    assert_output --partial '"result":7'
}

@test "counts survive a restart of the server" {
    k=$("$MANAGE_KEYS" add --name durable --env test --rate 3/hour 2>/dev/null)
    for i in 1 2 3; do post_execute '{"code": "result = 1"}' "$k"; assert_equal "$STATUS" 200; done
    stop_server
    start_server
    post_execute '{"code": "result = 1"}' "$k"
    assert_equal "$STATUS" 429
}

@test "an unwritable state directory gives 503 and loses nothing stored" {
    post_execute '{"code": "result = 1"}'
    before=$(cat "$PYEXEC_STATE"/clients/*.usage | sha256sum)
    chmod 500 "$PYEXEC_STATE/clients"
    k=$("$MANAGE_KEYS" add --name newcomer --env test 2>/dev/null)
    post_execute '{"code": "result = 1"}' "$k"
    # root ignores mode bits: only assert when the directory really refused us.
    if [ "$(id -u)" != 0 ]; then
        assert_equal "$STATUS" 503
    fi
    chmod 700 "$PYEXEC_STATE/clients"
    [ "$STATUS" = 200 ] || [ "$STATUS" = 503 ]
    post_execute '{"code": "result = 1"}'
    assert_equal "$STATUS" 200
}

@test "usage counters follow outcomes; manage-keys usage reports them" {
    k=$("$MANAGE_KEYS" add --name counted --env test 2>/dev/null)
    post_execute '{"code": "result = 1"}' "$k"
    post_execute '{"code": "1/0"}' "$k"
    post_execute '{"code": "while True: pass", "limits": {"timeout_ms": 300}}' "$k"
    run "$MANAGE_KEYS" usage --json --state "$PYEXEC_STATE"
    assert_success
    u=$(echo "$output" | /usr/bin/python3 -c 'import json,sys; print([json.dumps([e["requests"], e["successes"], e["user_errors"], e["timeouts"], e["cpu_seconds"] > 0]) for e in json.load(sys.stdin) if e["name"] == "counted"][0])')
    assert_equal "$u" '[3, 1, 1, 1, true]'
}

@test "/metrics needs an admin key; its counters add up" {
    admin=$("$MANAGE_KEYS" add --name ops --env prod --scope admin 2>/dev/null)
    run curl -s -w ' %{http_code}' "$URL/metrics"
    assert_output --regexp ' 401$'
    run curl -s -w ' %{http_code}' -H "X-API-Key: $KEY" "$URL/metrics"
    assert_output --regexp ' 403$'
    run curl -s -i -H "X-API-Key: $admin" "$URL/metrics"
    assert_output --partial "HTTP/1.1 200"
    assert_output --partial "Content-Type: text/plain; version=0.0.4"
    assert_output --partial "# TYPE pyexec_requests_total counter"
    assert_output --regexp 'pyexec_requests_total\{client="key_[0-9a-f]{16}",name="bats test",env="test"\} [0-9]+'
    assert_output --partial 'pyexec_cpu_seconds_total{'
    refute_output --partial "$KEY"
    # The admin-only key may not execute.
    post_execute '{"code": "result = 1"}' "$admin"
    assert_equal "$STATUS" 403
}

@test "a key given both scopes may execute and read metrics" {
    both=$("$MANAGE_KEYS" add --name both --env test --scope admin,execute 2>/dev/null)
    post_execute '{"code": "result = 1"}' "$both"
    assert_equal "$STATUS" 200
    run curl -s -o /dev/null -w '%{http_code}' -H "X-API-Key: $both" "$URL/metrics"
    assert_output 200
}
