#!/usr/bin/env bats
# POST /execute end to end: the seed's behaviour, exact JSON, output, errors.

setup_file() { load helpers; start_server; }
teardown_file() { load helpers; stop_server; }
setup() { load helpers; }

@test "the seed's curl example answers 3.0" {
    run curl -s -X POST "$URL/execute" -H "X-API-Key: $KEY" -H "Content-Type: application/json" \
        -d '{"code": "result = sum(data[\"numbers\"]) / len(data[\"numbers\"])", "data": {"numbers": [1, 2, 3, 4, 5]}}'
    assert_success
    assert_output --partial '"success":true,"result":3.0'
}

@test "the seed's second example: data x + y" {
    post_execute '{"code": "result = data[\"x\"] + data[\"y\"]", "data": {"x": 1, "y": 2}}'
    [ "$STATUS" = 200 ]
    [ "$(json_get "$BODY" 'j["result"]')" = 3 ]
}

@test "big integers round-trip exactly in data and result" {
    post_execute '{"code": "result = data[\"n\"] + 1", "data": {"n": 18446744073709551617}}'
    assert_equal "$STATUS" 200
    [[ "$BODY" == *'"result":18446744073709551618,'* ]]
    post_execute '{"code": "result = 2**100"}'
    [[ "$BODY" == *'"result":1267650600228229401496703205376,'* ]]
    post_execute '{"code": "result = -data", "data": -123456789012345678901234567890}'
    [[ "$BODY" == *'"result":123456789012345678901234567890,'* ]]
}

@test "a 5000-digit integer arrives exactly; as a result it is refused, not sent unreadable" {
    big=$(printf '9%.0s' $(seq 1 5000))
    post_execute "{\"code\": \"result = [data % 1000, data == 10**5000 - 1]\", \"data\": $big}"
    [[ "$BODY" == *'"result":[999,true],'* ]]
    post_execute "{\"code\": \"result = data\", \"data\": $big}"
    assert_equal "$(json_get "$BODY" 'j["error"]["type"]')" ResultNotSerializable
    [[ "$(json_get "$BODY" 'j["error"]["message"]')" == *"more than 4300 digits"* ]]
}

@test "floats keep their repr; tuples become arrays; nested values survive" {
    post_execute '{"code": "result = {\"f\": 0.1 + 0.2, \"t\": (1, \"a\"), \"n\": None, \"b\": [True, False], \"e\": 1e300}"}'
    [[ "$BODY" == *'"result":{"f":0.30000000000000004,"t":[1,"a"],"n":null,"b":[true,false],"e":1e+300}'* ]]
}

@test "data defaults to an empty object and may be any JSON value" {
    post_execute '{"code": "result = data"}'
    [[ "$BODY" == *'"result":{}'* ]]
    post_execute '{"code": "result = data", "data": [1, "two", null]}'
    [[ "$BODY" == *'"result":[1,"two",null]'* ]]
}

@test "unicode and escapes survive both ways" {
    post_execute '{"code": "result = data + \"\\u00e9\\U0001F600\\n\"", "data": "h\u00e9\"\\"}'
    assert_equal "$STATUS" 200
    assert_equal "$(json_get "$BODY" 'j["result"] == "h\u00e9\"\\\u00e9\U0001F600\n"')" true
}

@test "a NUL character in a result string is escaped, not truncated" {
    post_execute '{"code": "result = \"a\" + chr(0) + \"b\""}'
    [[ "$BODY" == *'"result":"a\u0000b"'* ]]
}

@test "NaN and Infinity are a typed error, never invalid JSON" {
    post_execute '{"code": "result = float(\"nan\")"}'
    assert_equal "$(json_get "$BODY" 'j["error"]["type"]')" ResultNotSerializable
    post_execute '{"code": "result = [float(\"inf\")]"}'
    assert_equal "$(json_get "$BODY" 'j["error"]["type"]')" ResultNotSerializable
}

@test "non-string dict keys and sets are refused, not converted" {
    post_execute '{"code": "result = {1: 2}"}'
    assert_equal "$(json_get "$BODY" 'j["error"]["type"]')" ResultNotSerializable
    [[ "$(json_get "$BODY" 'j["error"]["message"]')" == *"keys must be strings"* ]]
    post_execute '{"code": "result = {1, 2}"}'
    [[ "$(json_get "$BODY" 'j["error"]["message"]')" == *"set"* ]]
}

@test "a self-containing result is refused cleanly" {
    post_execute '{"code": "a = []\na.append(a)\nresult = a"}'
    assert_equal "$STATUS" 200
    assert_equal "$(json_get "$BODY" 'j["error"]["type"]')" ResultNotSerializable
}

@test "no result variable gives null" {
    post_execute '{"code": "x = 1"}'
    [[ "$BODY" == *'"success":true,"result":null'* ]]
}

@test "printed output is returned" {
    post_execute '{"code": "print(\"hello\", 42)\nprint(\"second\")\nresult = 1"}'
    assert_equal "$(json_get "$BODY" 'j["output"]')" "$(printf 'hello 42\nsecond')"
    assert_equal "$(json_get "$BODY" 'j["output_truncated"]')" false
}

@test "printed is readable in the snippet" {
    post_execute '{"code": "print(\"x\")\nresult = printed"}'
    assert_equal "$(json_get "$BODY" 'j["result"]')" "x"
}

@test "user exceptions give type, message and line" {
    post_execute '{"code": "a = 1\nb = 0\nc = a / b"}'
    assert_equal "$STATUS" 200
    assert_equal "$(json_get "$BODY" 'j["success"]')" false
    assert_equal "$(json_get "$BODY" 'j["error"]["type"]')" ZeroDivisionError
    assert_equal "$(json_get "$BODY" 'j["error"]["line"]')" 3
    post_execute '{"code": "x = {}\ny = x[\"missing\"]"}'
    assert_equal "$(json_get "$BODY" 'j["error"]["type"]')" KeyError
    post_execute '{"code": "raise ValueError(\"bad value\")"}'
    assert_equal "$(json_get "$BODY" 'j["error"]["message"]')" "bad value"
}

@test "syntax errors are reported with their line" {
    post_execute '{"code": "x = 1\ny = (\n"}'
    assert_equal "$STATUS" 200
    assert_equal "$(json_get "$BODY" 'j["error"]["type"]')" SyntaxError
    [ "$(json_get "$BODY" 'j["error"]["line"]')" -ge 2 ]
}

@test "policy rejections name the construct and the line" {
    post_execute '{"code": "x = 1\ny = x.__class__"}'
    assert_equal "$(json_get "$BODY" 'j["error"]["type"]')" SyntaxError
    assert_equal "$(json_get "$BODY" 'j["error"]["line"]')" 2
    [[ "$(json_get "$BODY" 'j["error"]["message"]')" == *"__class__"* ]]
}

@test "import is refused" {
    post_execute '{"code": "import os\nresult = os.getcwd()"}'
    assert_equal "$(json_get "$BODY" 'j["success"]')" false
    assert_equal "$(json_get "$BODY" 'j["error"]["type"]')" ImportError
    post_execute '{"code": "from os import path"}'
    assert_equal "$(json_get "$BODY" 'j["success"]')" false
}

@test "open and other dangerous builtins do not exist" {
    for name in open eval exec compile __import__ globals locals vars getattr input breakpoint; do
        post_execute "{\"code\": \"result = $name\"}"
        [ "$(json_get "$BODY" 'j["success"]')" = false ] || { echo "$name: $BODY"; return 1; }
    done
}

@test "the seed's builtins all work" {
    post_execute '{"code": "result = [abs(-1), bool(1), dict(a=1), float(\"1.5\"), int(\"7\"), len([1,2]), list((1,)), max(1,3), min(1,3), range(3)[2], str(5), sum([1,2]), tuple([1]), round(2.567, 2), pow(2, 10), list(map(abs, [-1])), list(filter(None, [0, 1])), list(enumerate(\"ab\")), list(zip([1], [2])), sorted([3,1,2]), any([0,1]), all([1,1]), isinstance(1, int)]"}'
    assert_equal "$STATUS" 200
    [[ "$BODY" == *'"result":[1,true,{"a":1},1.5,7,2,[1],3,1,2,"5",3,[1],2.57,1024,[1],[1],[[0,"a"],[1,"b"]],[[1,2]],[1,2,3],true,true,true]'* ]]
}

@test "functions, comprehensions, loops and augmented assignment work" {
    post_execute '{"code": "def sq(v):\n    return v * v\ntotal = 0\nfor i in range(10):\n    total += sq(i)\nresult = {\"total\": total, \"evens\": [i for i in range(6) if i % 2 == 0], \"d\": {k: v for k, v in zip(\"ab\", [1, 2])}}"}'
    [[ "$BODY" == *'"result":{"total":285,"evens":[0,2,4],"d":{"a":1,"b":2}}'* ]]
}

@test "stats are present on success and on failure" {
    post_execute '{"code": "result = 1"}'
    [ "$(json_get "$BODY" 'j["stats"]["wall_ms"] >= 0 and j["stats"]["cpu_ms"] >= 0 and j["stats"]["max_rss_kib"] > 0')" = true ]
    post_execute '{"code": "1/0"}'
    [ "$(json_get "$BODY" 'sorted(j["stats"])')" = '["cpu_ms", "max_rss_kib", "wall_ms"]' ]
}

@test "parallel requests each get their own answer" {
    local i
    for i in $(seq 1 12); do
        curl -s -X POST "$URL/execute" -H "X-API-Key: $KEY" -H 'Content-Type: application/json' \
            -d "{\"code\": \"result = data * 1000\", \"data\": $i}" > "$BATS_TEST_TMPDIR/out.$i" &
    done
    wait
    for i in $(seq 1 12); do
        grep -q "\"result\":$((i * 1000))," "$BATS_TEST_TMPDIR/out.$i" || { cat "$BATS_TEST_TMPDIR/out.$i"; return 1; }
    done
}

@test "a prod key runs with the prod profile" {
    post_execute '{"code": "result = 1"}' "$PROD_KEY"
    assert_equal "$STATUS" 200
    grep -q "env=prod" "$SRV_LOG"
}

# Scan a process's readable memory for a byte string; prints "found" or
# "absent" (root reads any process's memory, dumpable or not).
MEMSCAN_PY='
import re, sys
pid, needle = sys.argv[1], sys.argv[2].encode()
found = False
tail, tail_end = b"", -1   # a needle may straddle adjacent mappings (.data/.bss)
with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
    for line in maps:
        m = re.match(r"([0-9a-f]+)-([0-9a-f]+) (\S+)", line)
        lo, hi, perms = int(m[1], 16), int(m[2], 16), m[3]
        if "r" not in perms or hi - lo > 1 << 30 or "[vvar" in line or "[vsyscall" in line:
            continue
        try:
            mem.seek(lo)
            d = mem.read(hi - lo)
        except OSError:
            continue
        if needle in (tail if tail_end == lo else b"") + d:
            found = True
            break
        tail, tail_end = d[-len(needle):], hi
print("found" if found else "absent")
'

@test "the worker is a program of its own: no environment, no API key in its memory" {
    # The prod key: its 5 s limit leaves the scans time on a loaded machine.
    curl -s -o /dev/null -m 30 -X POST "$URL/execute" -H "X-API-Key: $PROD_KEY" \
        -H 'Content-Type: application/json' \
        -d '{"code": "while True: pass", "limits": {"timeout_ms": 5000}}' 3>&- &
    local curl_pid=$! sup="" worker="" i
    for i in $(seq 1 100); do
        for sup in $(pgrep -P "$SRV_PID"); do
            worker=$(pgrep -P "$sup" | head -n 1)
            [ -n "$worker" ] && [ "$(readlink "/proc/$worker/exe")" != "$(readlink "/proc/$sup/exe")" ] &&
                break 2
            worker=""
        done
        sleep 0.05
    done
    [ -n "$worker" ]
    # It executed pyexec-worker, with an empty environment (sanitizer
    # settings aside), and it is not dumpable.
    run readlink "/proc/$worker/exe"
    assert_output --regexp '/pyexec-worker$'
    run bash -c "tr '\0' '\n' < /proc/$worker/environ | grep -v '^[A-Z]*SAN_OPTIONS='"
    assert_output ""
    run /usr/bin/python3 -c "import os; print(os.stat('/proc/$worker').st_uid)"
    [ "$output" != "$(id -u)" ] || [ "$(id -u)" != 0 ]
    # The supervisor still holds the key (the request it read): the scan
    # finds it there, and not in the worker, which never had its memory.
    run /usr/bin/python3 -c "$MEMSCAN_PY" "$sup" "$PROD_KEY"
    assert_output found
    run /usr/bin/python3 -c "$MEMSCAN_PY" "$worker" "$PROD_KEY"
    assert_output absent
    wait "$curl_pid" || true
}

@test "a limit itself is allowed: a result of exactly result_bytes bytes, not one more" {
    # "abcdefghijklmn" is 16 bytes as JSON (quotes included).
    post_execute '{"code": "result = \"abcdefghijklmn\"", "limits": {"result_bytes": 16}}'
    assert_equal "$STATUS" 200
    assert_equal "$(json_get "$BODY" 'j["result"]')" abcdefghijklmn
    post_execute '{"code": "result = \"abcdefghijklmno\"", "limits": {"result_bytes": 16}}'
    assert_equal "$(json_get "$BODY" 'j["success"]')" false
    assert_equal "$(json_get "$BODY" 'j["error"]["type"]')" ResultTooLarge
    # A number exactly at the limit, and one byte over.
    post_execute '{"code": "result = 10**15", "limits": {"result_bytes": 16}}'
    assert_equal "$(json_get "$BODY" 'j["result"]')" 1000000000000000
    post_execute '{"code": "result = 10**16", "limits": {"result_bytes": 16}}'
    assert_equal "$(json_get "$BODY" 'j["success"]')" false
}
