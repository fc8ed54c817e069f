#!/usr/bin/env bats
# The memory limit's accounting (src/memlimit.c): the unit and property tests
# of tests/memlimit-test.c, then the red team's snippet against the real server.

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
    # The build the suite runs (normal or ASan) has its own memlimit-test.
    MEMLIMIT_TEST="$(dirname "$PYEXEC_BIN")/memlimit-test"
    [ -x "$MEMLIMIT_TEST" ] || skip "no $MEMLIMIT_TEST (make build/memlimit-test)"
}

@test "every allocator path counts exactly what the allocator holds" {
    run "$MEMLIMIT_TEST" paths
    assert_success
    assert_output --partial "paths: ok"
}

@test "property: random allocation sequences never let the count drift" {
    local seed
    for seed in 1 2 3 $RANDOM; do
        run "$MEMLIMIT_TEST" random "$seed" 20000
        [ "$status" = 0 ] || { echo "seed $seed: $output"; return 1; }
        assert_output --partial "random: ok"
    done
}

@test "a real interpreter on the hooks: nothing freed that was not counted" {
    run "$MEMLIMIT_TEST" python
    assert_success
    assert_output --partial "python: ok"
}

# The red team's snippet: fill the heap to the limit, then grow a string in
# place step by step, catching MemoryError; it reports what it holds.
GROW='def fill():
    held = []
    try:
        while True:
            held.append(b"x" * 65536)
    except Exception:
        pass
    for i in range(16):
        held.pop()
    return held
def grow(step):
    s = ""
    size = peak = 0
    for i in range(60000):
        try:
            s = s + "x" * step
            size = len(s)
            peak = max(peak, size)
        except Exception:
            try:
                s = "x" * size
            except Exception:
                s = ""
                size = 0
    return peak
held = fill()
result = sum([len(b) for b in held]) + grow(1000)'

@test "filling the heap then growing a string in place stays within the limit" {
    local mb body
    for mb in 16 64; do
        body=$(/usr/bin/python3 -c 'import json,sys; print(json.dumps({"code": sys.argv[1], "limits": {"memory_mb": int(sys.argv[2])}}))' "$GROW" "$mb")
        post_execute "$body"
        assert_equal "$STATUS" 200
        echo "memory_mb=$mb: $BODY"
        local held rss
        held=$(json_get "$BODY" 'j.get("result", 0)')
        [ "$held" -le $(( mb << 20 )) ]
        # The worker's peak RSS: the heap, the interpreter (~12 MiB) and slack.
        # (The sanitizer build's RSS holds its shadow and quarantine.)
        if [[ "$PYEXEC_BIN" != *build-asan* ]]; then
            rss=$(json_get "$BODY" 'j["stats"]["max_rss_kib"]')
            [ "$rss" -le $(( (mb + 24) * 1024 )) ]
        fi
    done
}

@test "the same snippet without catching ends in MemoryError" {
    local code="${GROW//except Exception:/except ZeroDivisionError:}"
    local body
    body=$(/usr/bin/python3 -c 'import json,sys; print(json.dumps({"code": sys.argv[1], "limits": {"memory_mb": 16}}))' "$code")
    post_execute "$body"
    assert_equal "$STATUS" 200
    assert_equal "$(json_get "$BODY" 'j["error"]["type"]')" MemoryError
    assert_server_healthy
}
