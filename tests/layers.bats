#!/usr/bin/env bats
# Fail closed: each sandbox layer is made impossible in turn by
# tests/deny-syscall.c, a seccomp filter put in front of the real pyexec (as
# a container runtime's filter would be; no test-only code path in pyexec).
# Without allow_missing_layers the request must not run (503 naming the layer
# and errno, a <3> log line, /health 503); with it, every answer and log line
# says the layer was missing.

setup_file() {
    load helpers
    export DENY="$BATS_FILE_TMPDIR/deny-syscall"
    cc -O2 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -o "$DENY" \
        "$ROOT/tests/deny-syscall.c" -lseccomp
}

setup() {
    load helpers
    [ "$(id -u)" = 0 ] || skip "the namespace and identity layers are pyexec's only as root"
}

teardown() {
    stop_server
}

# health: GET /health; sets HSTATUS and HBODY.
health() {
    local out
    out=$(curl -s -m 30 -w '\n%{http_code}' "$URL/health")
    HSTATUS="${out##*$'\n'}"
    HBODY="${out%$'\n'*}"
    HBODY="${HBODY%$'\n'}"
}

# check_layer LAYER STRERROR ERRNO RULE...: fail closed, then the opt-out.
# ALSO: more layers that go missing with this one (the opt-out must name them).
check_layer() {
    local layer=$1 why=$2 errno=$3 missing
    shift 3
    missing=$(/usr/bin/python3 -c 'import sys; print(",".join("\"%s\"" % a for a in sys.argv[1:]))' $layer ${ALSO:-})
    local msg="sandbox layer unavailable: $layer ($why)"
    SERVER_WRAP="$DENY $* --" start_server
    post_execute '{"code": "result = 6 * 7"}'
    [ "$STATUS" = 503 ] || { echo "execute: $STATUS $BODY"; return 1; }
    assert_equal "$(json_get "$BODY" 'j["error"]["type"]')" ServiceUnavailable
    assert_equal "$(json_get "$BODY" 'j["error"]["message"]')" "$msg"
    assert_equal "$(json_get "$BODY" '"sandbox" in j')" false
    health
    assert_equal "$HSTATUS" 503
    assert_equal "$(json_get "$HBODY" 'j["error"]["message"]')" "$msg"
    sleep 0.2   # the log lines are written after the answer
    grep -qxF "<3>pyexec: error: $msg errno=$errno" "$SRV_LOG" ||
        { echo "no <3> line for /execute"; cat "$SRV_LOG"; return 1; }
    grep -qxF "<3>pyexec: error: health: $msg errno=$errno" "$SRV_LOG" ||
        { echo "no <3> line for /health"; cat "$SRV_LOG"; return 1; }
    grep -q "path=/execute status=503 outcome=ServiceUnavailable .* layers=-$layer$" "$SRV_LOG"
    stop_server

    SERVER_WRAP="$DENY $* --" start_server $'[global]\nallow_missing_layers = '"$layer ${ALSO:-}"
    post_execute '{"code": "result = 6 * 7"}'
    [ "$STATUS" = 200 ] || { echo "execute with opt-out: $STATUS $BODY"; cat "$SRV_LOG"; return 1; }
    assert_equal "$(json_get "$BODY" 'j["result"]')" 42
    assert_equal "$(json_get "$BODY" 'j["sandbox"]')" "{\"missing\": [${missing//,/, }]}"
    health
    assert_equal "$HSTATUS" 200
    assert_equal "$HBODY" "{\"status\":\"ok\",\"sandbox\":{\"missing\":[$missing]}}"
    local logged
    logged=$(tr -d '"' <<< "$missing" | sed 's/^/-/; s/,/,-/g')
    sleep 0.2
    grep -q "path=/execute status=200 outcome=ok .* layers=$logged$" "$SRV_LOG"
    grep -q "path=/health status=200 outcome=ok .* layers=$logged$" "$SRV_LOG"
    refute grep -q '^<3>' "$SRV_LOG"
}

@test "control: with every layer in place, answers carry no sandbox member and log layers=all" {
    start_server
    post_execute '{"code": "result = 6 * 7"}'
    assert_equal "$STATUS" 200
    assert_equal "$(json_get "$BODY" '"sandbox" in j')" false
    health
    assert_equal "$HSTATUS" 200
    assert_equal "$HBODY" '{"status":"ok"}'
    sleep 0.2
    grep -q "path=/execute status=200 outcome=ok .* layers=all$" "$SRV_LOG"
    grep -q "path=/health status=200 outcome=ok .* layers=all$" "$SRV_LOG"
}

@test "landlock refused (ENOSYS, as in systemd-nspawn): 503, <3> log, /health 503; opt-out runs and says so" {
    check_layer landlock "Function not implemented" 38 landlock_create_ruleset:ENOSYS
}

@test "seccomp refused (ENOSYS): 503, <3> log, /health 503; opt-out runs and says so" {
    # libseccomp falls back to prctl(PR_SET_SECCOMP) when seccomp(2) is absent.
    check_layer seccomp "Function not implemented" 38 seccomp:ENOSYS prctl:ENOSYS:0=22
}

@test "network namespace refused (EPERM): 503, <3> log, /health 503; opt-out runs and says so" {
    check_layer netns "Operation not permitted" 1 'unshare:EPERM:0&0x40000000'
}

@test "IPC namespace refused (EPERM): 503, <3> log, /health 503; opt-out runs and says so" {
    check_layer ipcns "Operation not permitted" 1 'unshare:EPERM:0&0x08000000'
}

@test "UTS namespace refused (EPERM): 503, <3> log, /health 503; opt-out runs and says so" {
    check_layer utsns "Operation not permitted" 1 'unshare:EPERM:0&0x04000000'
}

@test "mount namespace refused (EPERM): 503, <3> log, /health 503; opt-out runs and says so" {
    check_layer mntns "Operation not permitted" 1 'unshare:EPERM:0&0x00020000'
}

@test "identity switch refused (setresuid EPERM): 503, <3> log, /health 503; opt-out runs and says so" {
    check_layer identity "Operation not permitted" 1 setresuid:EPERM
}

@test "rlimits refused (setrlimit CPU EPERM): 503, <3> log, /health 503; opt-out runs and says so" {
    check_layer rlimits "Operation not permitted" 1 'prlimit64:EPERM:1=0:2!=0'
}

@test "no_new_privs refused (EPERM): 503, <3> log, /health 503; opt-out runs and says so" {
    # Unprivileged Landlock and seccomp need no_new_privs: they go with it.
    ALSO="landlock seccomp" check_layer no_new_privs "Operation not permitted" 1 prctl:EPERM:0=38
}

@test "not-dumpable refused (EPERM): 503, <3> log, /health 503; opt-out runs and says so" {
    check_layer dumpable "Operation not permitted" 1 prctl:EPERM:0=4
}

@test "CPU and wall timers refused (timer_create EPERM): 503, <3> log, /health 503; opt-out runs and says so" {
    check_layer timers "Operation not permitted" 1 timer_create:EPERM
}

@test "an unknown layer in allow_missing_layers is a config error (503 for every request)" {
    start_server $'[global]\nallow_missing_layers = landlock, seccompp'
    post_execute '{"code": "result = 1"}'
    assert_equal "$STATUS" 503
    health
    assert_equal "$HSTATUS" 503
    sleep 0.2
    grep -q 'pyexec.conf:[0-9]*: unknown sandbox layer "seccompp" in allow_missing_layers' "$SRV_LOG"
}

@test "allow_missing_layers on a host that has the layer: nothing is reported missing" {
    start_server $'[global]\nallow_missing_layers = landlock seccomp,netns'
    post_execute '{"code": "result = 6 * 7"}'
    assert_equal "$STATUS" 200
    assert_equal "$(json_get "$BODY" '"sandbox" in j')" false
    health
    assert_equal "$HBODY" '{"status":"ok"}'
}
