#!/usr/bin/env bats
# A limit is a promise: the limit itself is allowed, one more is refused,
# on each path that consumes it.  (result_bytes: tests/execute.bats.)

setup_file() {
    load helpers
    start_server $'[test]\nbody_bytes = 200'
}

teardown_file() {
    load helpers
    stop_server
}

setup() {
    load helpers
    source "$BATS_FILE_TMPDIR/server.env"
}

# body_of N: a request body of exactly N bytes that runs "result = 1".
body_of() {
    local head='{"code": "result = 1", "data": {"pad": "' tail='"}}'
    local n=$(( $1 - ${#head} - ${#tail} ))
    local pad
    pad=$(printf '%*s' "$n" '' | tr ' ' x)
    printf '%s%s%s' "$head" "$pad" "$tail"
}

@test "body_bytes: a body of exactly the limit runs, one byte more is 413" {
    local b
    b=$(body_of 200)
    [ "${#b}" -eq 200 ]
    post_execute "$b"
    assert_equal "$STATUS" 200
    assert_equal "$(json_get "$BODY" 'j["result"]')" 1
    b=$(body_of 201)
    post_execute "$b"
    assert_equal "$STATUS" 413
}

@test "output_bytes: output of exactly the limit is whole, one byte more is cut and marked" {
    # print adds a newline: 9 characters + 1 = 10 bytes.
    post_execute '{"code": "print(\"123456789\")\nresult = 1", "limits": {"output_bytes": 10}}'
    assert_equal "$STATUS" 200
    assert_equal "$(json_get "$BODY" 'j["success"]')" true
    assert_equal "$(json_get "$BODY" 'repr(j["output"])')" "'123456789\\n'"
    assert_equal "$(json_get "$BODY" 'j.get("output_truncated", False)')" false
    post_execute '{"code": "print(\"1234567890\")\nresult = 1", "limits": {"output_bytes": 10}}'
    assert_equal "$(json_get "$BODY" 'j["output"]')" 1234567890
    assert_equal "$(json_get "$BODY" 'j["output_truncated"]')" true
}

@test "a request's limit at the environment's value is accepted, one more is 422" {
    post_execute '{"code": "result = 1", "limits": {"output_bytes": 65536}}'
    assert_equal "$STATUS" 200
    post_execute '{"code": "result = 1", "limits": {"output_bytes": 65537}}'
    assert_equal "$STATUS" 422
}
