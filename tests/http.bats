#!/usr/bin/env bats
# The HTTP layer: routing, framing, bounds, and a JSON error for every failure.

setup_file() { load helpers; start_server $'[global]\nrequest_timeout_ms = 1500'; }
teardown_file() { load helpers; stop_server; }
setup() { load helpers; }

# status_of RAW: the status code of the reply to raw bytes.
status_of() {
    raw_request "$@" | head -n 1 | cut -d' ' -f2
}

@test "GET /health answers without a key and without Python" {
    run curl -s -i "$URL/health"
    assert_output --partial "HTTP/1.1 200"
    assert_output --partial '{"status":"ok"}'
    assert_output --partial "Connection: close"
    assert_output --partial "Content-Type: application/json"
    refute_output --partial "wall_ms"
}

@test "unknown path is 404 with a JSON error" {
    run curl -s -w ' %{http_code}' "$URL/nope"
    assert_output --partial '"success":false'
    assert_output --partial '"type":"NotFound"'
    assert_output --regexp ' 404$'
}

@test "wrong method is 405 with Allow" {
    run curl -s -i "$URL/execute"
    assert_output --partial "HTTP/1.1 405"
    assert_output --partial "Allow: POST"
    run curl -s -i -X POST "$URL/health"
    assert_output --partial "Allow: GET"
    assert_output --partial '"type":"MethodNotAllowed"'
}

@test "every response carries X-Request-Id, the client's own when sane" {
    run curl -s -i -H "X-Request-Id: abc-123" "$URL/health"
    assert_output --partial "X-Request-Id: abc-123"
    run curl -s -i -H "X-Request-Id: bad id with spaces" "$URL/health"
    assert_output --regexp "X-Request-Id: [0-9a-f]{24}"
}

@test "POST without Content-Length is 411" {
    [ "$(status_of 'POST /execute HTTP/1.1\r\nHost: x\r\nX-API-Key: '"$KEY"'\r\n\r\n')" = 411 ]
}

@test "body larger than the limit is 413, judged before reading" {
    run raw_request 'POST /execute HTTP/1.1\r\nHost: x\r\nX-API-Key: '"$KEY"'\r\nContent-Type: application/json\r\nContent-Length: 99999999\r\n\r\n' --no-shutdown
    assert_output --partial "HTTP/1.1 413"
    assert_output --partial '"type":"PayloadTooLarge"'
}

@test "header block over 8 KiB is 431" {
    big=$(head -c 9000 /dev/zero | tr '\0' a)
    run curl -s -w ' %{http_code}' -H "X-Big: $big" "$URL/health"
    assert_output --regexp ' 431$'
    assert_output --partial '"type":"HeadersTooLarge"'
}

@test "too many headers is 431" {
    args=()
    for i in $(seq 1 120); do args+=(-H "X-H$i: v"); done
    run curl -s -w ' %{http_code}' "${args[@]}" "$URL/health"
    assert_output --regexp ' 431$'
}

@test "Transfer-Encoding is refused with 501; with Content-Length too it is 400" {
    [ "$(status_of 'POST /execute HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n')" = 501 ]
    [ "$(status_of 'POST /execute HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello')" = 400 ]
}

@test "duplicate, signed or overflowing Content-Length is 400" {
    [ "$(status_of 'POST /execute HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}')" = 400 ]
    [ "$(status_of 'POST /execute HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}')" = 400 ]
    [ "$(status_of 'POST /execute HTTP/1.1\r\nHost: x\r\nContent-Length: +2\r\n\r\n{}')" = 400 ]
    [ "$(status_of 'POST /execute HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n{}')" = 400 ]
    [ "$(status_of 'POST /execute HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n{}')" = 400 ]
}

@test "malformed request lines are 400; HTTP/0.9 and missing version too" {
    [ "$(status_of 'garbage\r\n\r\n')" = 400 ]
    [ "$(status_of 'GET /health\r\n\r\n')" = 400 ]
    [ "$(status_of 'GET /health HTTP/1.1 extra\r\n\r\n')" = 400 ]
    [ "$(status_of 'GET health HTTP/1.1\r\nHost: x\r\n\r\n')" = 400 ]
    [ "$(status_of 'GET /health HTTP/2.0\r\nHost: x\r\n\r\n')" = 505 ]
    [ "$(status_of 'GET /health FOO/1.1\r\nHost: x\r\n\r\n')" = 400 ]
}

@test "header without colon, folded header, NUL byte, missing Host are 400" {
    [ "$(status_of 'GET /health HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n')" = 400 ]
    [ "$(status_of 'GET /health HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n folded\r\n\r\n')" = 400 ]
    [ "$(status_of 'GET /health HTTP/1.1\r\nHost: x\x00y\r\n\r\n')" = 400 ]
    [ "$(status_of 'GET /health HTTP/1.1\r\n\r\n')" = 400 ]
    [ "$(status_of 'GET /health HTTP/1.0\r\n\r\n')" = 200 ]
}

@test "a body shorter than announced is 400, not a hang" {
    run raw_request 'POST /execute HTTP/1.1\r\nHost: x\r\nX-API-Key: '"$KEY"'\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"code"'
    assert_output --partial "HTTP/1.1 400"
    assert_output --partial "body ended after"
}

@test "a client that sends nothing is closed at the deadline with 408" {
    local cfgdir="$BATS_TEST_TMPDIR"
    start=$(date +%s%N)
    run raw_request 'GET /health HTTP/1.1\r\nHost: x\r\n' --no-shutdown
    elapsed=$(( ($(date +%s%N) - start) / 1000000 ))
    assert_output --partial "HTTP/1.1 408"
    assert_output --partial '"type":"RequestTimeout"'
    [ "$elapsed" -lt 20000 ]
}

@test "a client that stops halfway through the body gets 408" {
    run raw_request 'POST /execute HTTP/1.1\r\nHost: x\r\nX-API-Key: '"$KEY"'\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{"code":' --no-shutdown
    assert_output --partial "HTTP/1.1 408"
}

@test "an empty connection gets a 400 and the server goes on" {
    run raw_request ''
    assert_output --partial "HTTP/1.1 400"
    assert_server_healthy
}

@test "invalid JSON is 400 with a message" {
    post_execute '{"code": '
    assert_equal "$STATUS" 400
    assert_equal "$(json_get "$BODY" 'j["error"]["type"]')" InvalidJSON
    post_execute 'not json at all'
    assert_equal "$STATUS" 400
}

@test "one JSON value only: trailing data, a second value, stray control bytes are 400" {
    post_execute '{"code": "result = 1"} trailing garbage'
    assert_equal "$STATUS" 400
    post_execute '{"code": "result = 1"}{"code": "result = 2"}'
    assert_equal "$STATUS" 400
    post_execute "$(printf '{"code":\x01"result = 2"}')"
    assert_equal "$STATUS" 400
    post_execute "$(printf '{"code": "result = 3"}\r\n\t ')"
    assert_equal "$STATUS" 200
}

@test "invalid UTF-8 in the body is 400" {
    post_execute "$(printf '{"code": "result = \\"\xff\xfe\\""}')"
    assert_equal "$STATUS" 400
    [[ "$(json_get "$BODY" 'j["error"]["message"]')" == *UTF-8* ]]
}

@test "\\u0000 and raw control characters in strings are 400" {
    post_execute '{"code": "result = 1\u0000"}'
    assert_equal "$STATUS" 400
    post_execute "$(printf '{"code": "result = \x01"}')"
    assert_equal "$STATUS" 400
}

@test "wrong shapes are 422 and say what is wrong" {
    post_execute '[1, 2]'
    assert_equal "$STATUS" 422
    [[ "$(json_get "$BODY" 'j["error"]["message"]')" == *"JSON object"* ]]
    post_execute '{"data": {}}'
    assert_equal "$STATUS" 422
    [[ "$(json_get "$BODY" 'j["error"]["message"]')" == *'"code"'* ]]
    post_execute '{"code": 42}'
    assert_equal "$STATUS" 422
    [[ "$(json_get "$BODY" 'j["error"]["message"]')" == *"must be a string"* ]]
    post_execute '{"code": "x=1", "dta": {}}'
    assert_equal "$STATUS" 422
    [[ "$(json_get "$BODY" 'j["error"]["message"]')" == *"dta"* ]]
    post_execute '{"code": "x=1", "data": 1e999}'
    assert_equal "$STATUS" 422
}

@test "a non-JSON Content-Type is 415" {
    run curl -s -w ' %{http_code}' -X POST "$URL/execute" -H "X-API-Key: $KEY" -d '{"code": "x=1"}'
    assert_output --regexp ' 415$'
    run curl -s -w ' %{http_code}' -X POST "$URL/execute" -H "X-API-Key: $KEY" \
        -H 'Content-Type: application/json; charset=utf-8' -d '{"code": "result=1"}'
    assert_output --regexp ' 200$'
}

@test "two X-API-Key or two Host headers are 400" {
    [ "$(status_of 'POST /execute HTTP/1.1\r\nHost: x\r\nX-API-Key: a\r\nX-API-Key: b\r\nContent-Length: 2\r\n\r\n{}')" = 400 ]
    [ "$(status_of 'GET /health HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n')" = 400 ]
}

@test "query strings are ignored for routing" {
    run curl -s "$URL/health?x=1"
    assert_output '{"status":"ok"}'
}

@test "every request is logged as one line without the key or the code" {
    post_execute '{"code": "result = \"secret-code-marker\"", "data": {"d": "secret-data-marker"}}'
    run grep -c "pyexec: request_id=" "$SRV_LOG"
    [ "$output" -gt 0 ]
    run grep -E "secret-code-marker|secret-data-marker|$KEY" "$SRV_LOG"
    assert_failure
    grep -q "status=200 outcome=ok" "$SRV_LOG"
}

@test "Expect: 100-continue gets a 100 before the body is sent, then 200" {
    run timeout 20 /usr/bin/python3 "$BATS_TEST_DIRNAME/expect.py" "$PORT" "$KEY" '{"code":"result = 6*7"}'
    assert_line "GOT-100"
    assert_output --partial "HTTP/1.1 200"
    assert_output --partial '"result":42'
    refute_output --partial "TIMEOUT"
}

@test "Expect: 100-continue with a wrong key gets 401 and no 100" {
    run timeout 20 /usr/bin/python3 "$BATS_TEST_DIRNAME/expect.py" "$PORT" wrong-key '{"code":"1"}'
    refute_line "GOT-100"
    refute_output --partial "100 Continue"
    assert_output --regexp "^HTTP/1.1 401"
}

@test "Expect: 100-continue with a body over the limit gets 413 and no 100" {
    run timeout 20 /usr/bin/python3 "$BATS_TEST_DIRNAME/expect.py" "$PORT" "$KEY" --size=2000000
    refute_line "GOT-100"
    assert_output --regexp "^HTTP/1.1 413"
}

@test "any other expectation is 417" {
    run raw_request 'GET /health HTTP/1.1\r\nHost: x\r\nExpect: foo\r\n\r\n'
    assert_output --partial "HTTP/1.1 417 Expectation Failed"
    assert_output --partial '"type":"ExpectationFailed"'
}

@test "curl with Expect: 100-continue and a 2 KiB body answers at once" {
    code=$(head -c 2000 /dev/zero | tr '\0' ' ')
    start=$(date +%s%N)
    run curl -s -H "X-API-Key: $KEY" -H 'Content-Type: application/json' \
        -H 'Expect: 100-continue' --expect100-timeout 10 \
        --data-binary "{\"code\":\"result = 1$code\"}" "$URL/execute"
    ms=$(( ($(date +%s%N) - start) / 1000000 ))
    assert_output --partial '"result":1'
    [ "$ms" -lt 5000 ]
}

# body_after_head RAW: (repr of) what follows the blank line of the reply (read until close).
body_after_head() {
    raw_request "$@" | /usr/bin/python3 -c 'import sys; d=sys.stdin.read(); print(repr(d.split("\r\n\r\n",1)[1]))'
}

@test "HEAD is answered like GET, with the GET body's Content-Length and no body" {
    get=$(raw_request 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n')
    head=$(raw_request 'HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n')
    [[ "$head" == "HTTP/1.1 200 OK"* ]]
    get_cl=$(grep -i '^Content-Length:' <<<"$get" | tr -d '\r')
    head_cl=$(grep -i '^Content-Length:' <<<"$head" | tr -d '\r')
    assert_equal "$head_cl" "$get_cl"
    grep -q '^Content-Type: application/json' <<<"$head"
    [ "$(body_after_head 'HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n')" = "''" ]
    [ "$(body_after_head 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n')" != "''" ]
}

@test "HEAD /metrics needs the key like GET and sends no body" {
    admin=$("$MANAGE_KEYS" add --name "head admin" --env test --scope admin 2>/dev/null)
    run raw_request 'HEAD /metrics HTTP/1.1\r\nHost: x\r\nX-API-Key: '"$admin"'\r\n\r\n'
    assert_output --regexp '^HTTP/1.1 200'
    assert_output --partial 'Content-Type: text/plain; version=0.0.4'
    [ "$(body_after_head 'HEAD /metrics HTTP/1.1\r\nHost: x\r\nX-API-Key: '"$admin"'\r\n\r\n')" = "''" ]
    [ "$(body_after_head 'HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n')" = "''" ]
    [ "$(status_of 'HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n')" = 401 ]
}

@test "HEAD on POST-only /execute is 405 with Allow and no body" {
    run raw_request 'HEAD /execute HTTP/1.1\r\nHost: x\r\n\r\n'
    assert_output --regexp '^HTTP/1.1 405'
    assert_output --partial 'Allow: POST'
    [ "$(body_after_head 'HEAD /execute HTTP/1.1\r\nHost: x\r\n\r\n')" = "''" ]
    [ "$(status_of 'HEAD /nope HTTP/1.1\r\nHost: x\r\n\r\n')" = 404 ]
}

@test "duplicate member names are 422 naming the key: request, limits, data at any depth" {
    for body in '{"code":"result=1","code":"result=2"}' \
                '{"code":"result=1","limits":{"timeout_ms":100,"timeout_ms":999999999}}' \
                '{"code":"result=data","data":{"code":1,"code":2}}' \
                '{"code":"result=data","data":[1,{"a":{"code":1,"b":2,"code":3}}]}'; do
        post_execute "$body"
        assert_equal "$STATUS" 422
        assert_equal "$(json_get "$BODY" 'j["error"]["type"]')" ValidationError
        assert_equal "$(json_get "$BODY" 'j["error"]["message"]')" \
            "duplicate member name \"$(grep -q timeout <<<"$body" && echo timeout_ms || echo code)\" in a JSON object"
    done
    # Same names in different objects are not duplicates.
    post_execute '{"code":"result=data[\"a\"][\"a\"]","data":{"a":{"a":7}}}'
    assert_equal "$STATUS" 200
    assert_equal "$(json_get "$BODY" 'j["result"]')" 7
}

@test "numbers outside the RFC 8259 grammar are 400 InvalidJSON wherever they are" {
    for n in 01 -01 1. -.5 .5 1e 1e+ +1 00 1.e5; do
        for body in "{\"code\":\"result=1\",\"data\":{\"x\":$n}}" \
                    "{\"code\":\"result=1\",\"data\":[[$n]]}" \
                    "{\"code\":\"result=1\",\"limits\":{\"timeout_ms\":$n}}"; do
            post_execute "$body"
            assert_equal "$STATUS $body" "400 $body"
            assert_equal "$(json_get "$BODY" 'j["error"]["type"]')" InvalidJSON
        done
    done
    post_execute '{"code":"result=data","data":[0,-0,0.5,-1.25e-3,1E+2,10,123456789012345678901234567890]}'
    assert_equal "$STATUS" 200
    assert_equal "$(json_get "$BODY" 'j["result"]')" '[0, 0, 0.5, -0.00125, 100.0, 10, 123456789012345678901234567890]'
}

@test "the cut of a long unknown field name falls on a UTF-8 character boundary" {
    for prefix in "" a ab; do
        name="$prefix$(printf 'é%.0s' $(seq 1 70))"
        printf '{"code":"1","%s":1}' "$name" > "$BATS_TEST_TMPDIR/body.json"
        curl -s -o "$BATS_TEST_TMPDIR/out" -H "X-API-Key: $KEY" -H 'Content-Type: application/json' \
            --data-binary @"$BATS_TEST_TMPDIR/body.json" "$URL/execute"
        run /usr/bin/python3 -c '
import json, sys
j = json.loads(open(sys.argv[1], "rb").read().decode("utf-8", "strict"))
print(j["error"]["type"], j["error"]["message"])' "$BATS_TEST_TMPDIR/out"
        assert_success
        assert_output --partial "ValidationError unknown field \"${prefix}éé"
    done
    printf '{"code":"1","limits":{"%s":1}}' "a$name" > "$BATS_TEST_TMPDIR/body.json"
    curl -s -o "$BATS_TEST_TMPDIR/out" -H "X-API-Key: $KEY" -H 'Content-Type: application/json' \
        --data-binary @"$BATS_TEST_TMPDIR/body.json" "$URL/execute"
    /usr/bin/python3 -c 'import json,sys; print(json.loads(open(sys.argv[1],"rb").read().decode("utf-8","strict")))' "$BATS_TEST_TMPDIR/out"
}
