#!/usr/bin/env bats
# Soak: thousands of requests at concurrency 8, mixing good, bad-key,
# erroring and timing-out snippets.  Nothing may fail, leak or linger.
# SOAK_REQUESTS overrides the count (default 3000; the sanitizer run uses fewer).

# Generous wall limits: under a loaded machine (or ASan) a good request must
# not time out; the timing-out snippets set their own 300 ms.
setup_file() { load helpers; start_server $'[test]\ntimeout_ms = 10000\ncpu_ms = 10000'; }
teardown_file() { load helpers; stop_server; }
setup() { load helpers; }

fd_count() { ls "/proc/$1/fd" | wc -l; }

@test "soak: every answer well-formed, no processes, files or descriptors left behind" {
    local n="${SOAK_REQUESTS:-3000}"
    case "$PYEXEC_BIN" in *build-asan*) n="${SOAK_REQUESTS:-1000}" ;; esac
    fds_before=$(fd_count "$SRV_PID")
    run timeout 1200 /usr/bin/python3 "$BATS_TEST_DIRNAME/soak.py" "$PORT" "$KEY" "$n" 8
    echo "$output"
    assert_success
    assert_output --partial ": 0 failures"
    # Every executor process has exited (allow a moment for the last ones).
    for i in $(seq 1 50); do
        [ -z "$(pgrep -P "$SRV_PID")" ] && break
        sleep 0.1
    done
    run pgrep -P "$SRV_PID"
    assert_failure
    # No descriptor growth in the listener, no temporary files.
    assert_equal "$(fd_count "$SRV_PID")" "$fds_before"
    # pyexec writes no temporary files: nothing of the worker's user anywhere
    # writable (the supervisor writes only the state directory, below).
    run find /tmp /var/tmp /dev/shm -xdev -user nobody -newer "$PYEXEC_CONFIG"
    assert_output ""
    # Only what the state directory is meant to hold.
    run find "$PYEXEC_STATE" -type f ! -name '*.usage' ! -name '*.slots'
    assert_output ""
    # One log line per request.
    [ "$(grep -c 'pyexec: request_id=' "$SRV_LOG")" -ge "$n" ]
}
