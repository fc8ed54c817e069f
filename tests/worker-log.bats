#!/usr/bin/env bats
# A snippet cannot write to the server's log: the worker's stderr is
# /dev/null, warnings are off and unraisable exceptions are dropped; and no
# descriptor the worker holds leads to the log.

setup_file() {
    load helpers
    start_server
}

teardown_file() {
    load helpers
    stop_server
}

setup() {
    load helpers
}

# Lines of the log that pyexec wrote (not systemd-socket-activate's own).
log_lines() {
    grep -c -v -E '^(Communication attempt on fd|Connection from |Spawned |Execing |Child [0-9]+ )' "$SRV_LOG"
}

# post_code CODE: POST /execute with CODE as the snippet.
post_code() {
    post_execute "$(/usr/bin/python3 -c 'import json,sys; print(json.dumps({"code": sys.argv[1]}))' "$1")"
}

@test "an exception in a generator's finally leaves no trace in the log" {
    local before
    before=$(log_lines)
    post_code 'def g():
  try:
    yield 1
  finally:
    raise ValueError("\n127.0.0.1 POST /execute status=200 FORGED")
x = g(); next(x); del x
result = 1'
    assert_equal "$STATUS" 200
    assert_equal "$(json_get "$BODY" 'j["result"]')" 1
    sleep 0.2
    run grep -c FORGED "$SRV_LOG"
    assert_output 0
    run grep -c "Exception ignored" "$SRV_LOG"
    assert_output 0
    # Exactly one line more: the request's own.
    assert_equal "$(log_lines)" $((before + 1))
}

@test "5000 SyntaxWarnings add nothing to the log but the request line" {
    local code before_lines
    code=$(/usr/bin/python3 -c 'print("x = 1\n" + "y = x is 1\n" * 5000 + "assert(1, 2)\nresult = 2")')
    before_lines=$(log_lines)
    post_code "$code"
    assert_equal "$STATUS" 200
    assert_equal "$(json_get "$BODY" 'j["result"]')" 2
    sleep 0.2
    run grep -c -i "warning" "$SRV_LOG"
    assert_output 0
    assert_equal "$(log_lines)" $((before_lines + 1))
    grep -v -E '^(Child|Connection|Spawned|Execing|Communication)' "$SRV_LOG" | tail -n 1 |
        grep -q '^<6>pyexec: request_id='
}

# The supervisor (child of systemd-socket-activate) and its worker while a
# snippet runs; prints "SUPERVISOR WORKER".
find_worker() {
    local sup w i
    for i in $(seq 1 100); do
        sup=$(pgrep -P "$SRV_PID" | head -n 1)
        w=${sup:+$(pgrep -P "$sup" | head -n 1)}
        if [ -n "$w" ] && [ -n "$(cat "/proc/$w/stat" 2>/dev/null)" ]; then
            echo "$sup $w"
            return 0
        fi
        sleep 0.02
    done
    return 1
}

@test "the worker's descriptors while user code runs: 0-2 on /dev/null and the done pipe" {
    [ "$(id -u)" = 0 ] || skip "reading a non-dumpable worker's /proc needs root"
    post_code 'n = 0
while n < 10**9:
    n += 1' &
    local client=$! pids sup w
    pids=$(find_worker)
    read -r sup w <<< "$pids"
    # Wait until the worker has locked down (its stage in the log is unknown
    # yet): the job memfd is closed before Python starts.
    local i
    for i in $(seq 1 100); do
        [ -e "/proc/$w/fd/4" ] || break
        sleep 0.02
    done
    local listing fd target flags log_target
    log_target=$(readlink "/proc/$sup/fd/2")
    listing=$(cd "/proc/$w/fd" && for fd in *; do
        target=$(readlink "$fd")
        flags=$(awk '/^flags:/ {print $2}' "/proc/$w/fdinfo/$fd")
        echo "$fd $target $flags"
    done)
    kill "$client" 2>/dev/null || true
    wait "$client" 2>/dev/null || true
    echo "worker $w (supervisor $sup, log $log_target):"
    echo "$listing"
    # Exactly these descriptors, each where it should lead.
    assert_equal "$(echo "$listing" | awk '{print $1}' | tr '\n' ' ')" "0 1 2 3 "
    local line
    while read -r fd target flags; do
        case $fd in
            0|1|2) assert_equal "$target" /dev/null ;;
            3) [[ "$target" == pipe:* ]] || { echo "fd 3 is $target"; return 1; }
               # the write end of the done pipe, which the supervisor reads
               [ "$(readlink "/proc/$sup/fd/2")" != "$target" ] ;;
        esac
        [ "$target" != "$log_target" ] || { echo "fd $fd leads to the log"; return 1; }
        [ "$target" != "$SRV_LOG" ] || { echo "fd $fd is the log file"; return 1; }
    done <<< "$listing"
}
