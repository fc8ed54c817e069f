#!/usr/bin/env bats
# valgrind --leak-check=full over the supervisor for a representative set of
# requests: every request path in our C before and after the worker.  The
# worker program runs natively (valgrind does not follow execve here; under
# valgrind its own system calls would be refused by the worker's seccomp
# filter), so it is covered by the ASan/UBSan build and the libFuzzer
# harnesses instead.  No suppressions are needed: the supervisor never loads
# libpython.

setup_file() {
    load helpers
    command -v valgrind >/dev/null || skip "valgrind not installed"
    export VG_DIR="$BATS_FILE_TMPDIR/vg"
    mkdir -p "$VG_DIR"
    # The sanitizer build cannot run under valgrind; always use the normal one.
    PYEXEC_BIN="$ROOT/build/pyexec" VALGRIND_WRAP=1 start_server $'[global]\nrequest_timeout_ms = 3000'
}
teardown_file() { load helpers; stop_server; }
setup() { load helpers; }

@test "the supervisor is clean under valgrind for every kind of request" {
    curl -s -o /dev/null "$URL/health"
    curl -s -o /dev/null "$URL/nope"
    curl -s -o /dev/null -X DELETE "$URL/execute"
    post_execute '{"code": "result = 1"}' "sk_test_wrong"
    post_execute '{"code": '
    post_execute '{"code": 1}'
    post_execute '{"code": "result = [1, 2**70]", "data": {"n": [1, {"x": null}], "f": 1.5}}'
    post_execute '{"code": "x", "limits": {"timeout_ms": 999999}}'
    raw_request 'POST /execute HTTP/1.1\r\nHost: x\r\nX-API-Key: '"$KEY"'\r\nContent-Type: application/json\r\nContent-Length: 99999999\r\n\r\n' --no-shutdown >/dev/null
    raw_request 'garbage\r\n\r\n' >/dev/null
    raw_request 'GET /health HTTP/1.1\r\nHost: x\r\n' --no-shutdown >/dev/null
    admin=$("$MANAGE_KEYS" add --name vg-admin --env test --scope admin 2>/dev/null)
    curl -s -o /dev/null -H "X-API-Key: $admin" "$URL/metrics"
    sleep 1
    run ls "$VG_DIR"
    [ "${#lines[@]}" -ge 12 ]
    for f in "$VG_DIR"/vg.*.log; do
        grep -q "ERROR SUMMARY: 0 errors" "$f" || { cat "$f"; return 1; }
        if grep -qE "(definitely|indirectly) lost: [1-9]" "$f"; then cat "$f"; return 1; fi
    done
}
