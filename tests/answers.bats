#!/usr/bin/env bats
# Answers every ordinary client can read: strict UTF-8 and strict JSON that
# Python's json module parses under its default limits, messages cut on a
# character boundary and marked, U+0000 kept, compile errors typed as
# SyntaxError with their line, import refusals that say so, and no memory
# address anywhere.

setup_file() { load helpers; start_server; }
teardown_file() { load helpers; stop_server; }
setup() { load helpers; }

# The client: argv URL KEY CODE.  Posts {"code": CODE}, keeps the raw answer
# in answer.bin, and fails unless it is strict UTF-8 and strict JSON
# (no NaN/Infinity, no duplicate keys) that json.loads reads with its
# default 4300-digit integer limit, and holds no memory address.
ASK_PY='
import json, re, sys, urllib.error, urllib.request
url, key, code, out = sys.argv[1:5]
body = json.dumps({"code": code}).encode()
req = urllib.request.Request(url + "/execute", body, {"X-API-Key": key, "Content-Type": "application/json"})
try:
    with urllib.request.urlopen(req, timeout=30) as r:
        raw = r.read()
except urllib.error.HTTPError as e:
    raw = e.read()
open(out, "wb").write(raw)
def no_dups(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate key")
    return dict(pairs)
def no_constant(name):
    raise ValueError("not JSON: " + name)
try:
    json.loads(raw.decode("utf-8", "strict"), object_pairs_hook=no_dups, parse_constant=no_constant)
except ValueError as e:
    print("not strict UTF-8 JSON: %s: %r" % (e, raw[:300])); sys.exit(1)
m = re.search(rb"0x[0-9a-fA-F]{6,}", raw)
if m:
    print("memory address in the answer: %r" % raw[max(0, m.start() - 60):m.end()]); sys.exit(1)
'

# ask CODE: run CODE; the answer must pass ASK_PY's checks.
ask() {
    local out
    out=$(/usr/bin/python3 -I -S -c "$ASK_PY" "$URL" "$KEY" "$1" "$BATS_TEST_TMPDIR/answer.bin") ||
        { printf '%s\n' "$out"; return 1; }
}

# answer EXPR: a Python expression over the last answer `j` (and its bytes `raw`).
answer() {
    /usr/bin/python3 -I -S -c 'import json, sys
raw = open(sys.argv[2], "rb").read(); j = json.loads(raw)
v = eval(sys.argv[1]); print(json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else v)' \
        "$1" "$BATS_TEST_TMPDIR/answer.bin"
}

# --- 1. integers JSON clients can parse -------------------------------------

@test "a 4300-digit integer result arrives exactly, read by json.loads with its default limit" {
    ask 'result = [10**4300 - 1, -(10**4300 - 1), {"n": 10**4299}]'
    assert_equal "$(answer 'j["success"]')" true
    assert_equal "$(answer 'j["result"] == [10**4300 - 1, -(10**4300 - 1), {"n": 10**4299}]')" true
}

@test "a result holding an integer of 4301 digits, at any depth, is ResultNotSerializable" {
    local code
    for code in 'result = 10**4300' 'result = -(10**4300)' 'result = 10**5000' \
            'result = [1, {"a": [2, 10**4300]}]' 'result = {"k": (10**4300,)}'; do
        ask "$code"
        assert_equal "$(answer 'j["error"]["type"]')" ResultNotSerializable
        [[ "$(answer 'j["error"]["message"]')" == *"integer of more than 4300 digits"*"as a string"* ]] ||
            { echo "$code: $(answer 'j')"; return 1; }
    done
}

@test "the snippet keeps CPython's default int/str digit limit" {
    ask 'result = len(str(10**4299))'
    assert_equal "$(answer 'j["result"]')" 4300
    ask 'result = str(10**4300)'
    assert_equal "$(answer 'j["error"]["type"]')" ValueError
    [[ "$(answer 'j["error"]["message"]')" == *"4300 digits"* ]]
}

@test "data integers beyond 4300 digits still arrive exactly" {
    post_execute "{\"code\": \"result = [data == 10**5000 - 1, data % 1000]\", \"data\": $(printf '9%.0s' $(seq 1 5000))}"
    assert_equal "$STATUS" 200
    [[ "$BODY" == *'"result":[true,999]'* ]]
}

# --- 2. imports --------------------------------------------------------------

@test "try: import / except ImportError: works, and ModuleNotFoundError exists" {
    ask 'try:
 import json
except ImportError:
 result = "no json"'
    assert_equal "$(answer 'j["result"]')" "no json"
    ask 'try:
    raise ModuleNotFoundError("m")
except ImportError as e:
    result = ["caught", str(e), isinstance(e, ModuleNotFoundError)]'
    assert_equal "$(answer 'j["result"]')" '["caught", "m", true]'
}

@test "an import is an ImportError that says which import is not allowed" {
    ask 'x = 1
import os'
    assert_equal "$(answer 'j["error"]')" '{"type": "ImportError", "message": "import of '"'os'"' is not allowed", "line": 2}'
    ask 'from os import path'
    assert_equal "$(answer 'j["error"]["message"]')" "import of 'os' is not allowed"
    ask 'import os.path'
    assert_equal "$(answer 'j["error"]["message"]')" "import of 'os.path' is not allowed"
    ask 'from string import Formatter'
    assert_equal "$(answer 'j["error"]["message"]')" "import of 'string' is not allowed"
}

# --- 3. and 4. messages cut on a character boundary, and marked --------------

@test "a long exception message is cut to 1023 bytes and marked message_truncated" {
    ask 'raise ValueError("x" * 2000)'
    assert_equal "$(answer 'j["error"]["message"] == "x" * 1023')" true
    assert_equal "$(answer 'j["error"]["message_truncated"]')" true
    ask 'raise ValueError("x" * 1023)'
    assert_equal "$(answer 'j["error"]["message"] == "x" * 1023')" true
    assert_equal "$(answer '"message_truncated" in j["error"]')" false
    ask 'raise ValueError("short")'
    assert_equal "$(answer 'sorted(j["error"])')" '["line", "message", "type"]'
}

@test "messages of 2000 'é', of emoji and of 3-byte characters are cut between characters" {
    local ch
    for ch in 'é' '😀' '€' 'a😀'; do
        ask "raise ValueError(\"$ch\" * 2000)"
        assert_equal "$(answer "j['error']['message_truncated'] and (\"$ch\" * 2000).startswith(j['error']['message'])")" true
        [ "$(answer 'len(j["error"]["message"].encode())')" -gt 1019 ]
    done
}

@test "a SyntaxError excerpt of multi-byte text is cut between characters" {
    ask "x = (\"$(printf 'é%.0s' $(seq 1 1500))\""
    assert_equal "$(answer 'j["error"]["type"]')" SyntaxError
    assert_equal "$(answer 'j["error"]["line"]')" 1
    assert_equal "$(answer 'j["error"]["message_truncated"]')" true
    [[ "$(answer 'j["error"]["message"]')" == *"never closed"* ]]
}

@test "printed output cut at the cap falls between characters too" {
    post_execute '{"code": "print(\"\u00e9\" * 100)", "limits": {"output_bytes": 51}}'
    [ "$(json_get "$BODY" 'j["output"] == "\u00e9" * 25 and j["output_truncated"]')" = true ]
}

# --- 5. U+0000 in a message --------------------------------------------------

@test "an exception message holding U+0000 is kept whole, with its line" {
    ask 'x = 1
raise ValueError("a\x00b")'
    assert_equal "$(answer 'j["error"]')" '{"type": "ValueError", "message": "a\u0000b", "line": 2}'
    assert_equal "$(answer 'b"a\\u0000b" in raw')" true
    ask 'raise ValueError("\x00" * 5000)'
    assert_equal "$(answer 'j["error"]["message"] == "\x00" * 1023 and j["error"]["message_truncated"]')" true
}

# --- 6. errors of CPython's compiler ----------------------------------------

@test "return, yield, break, continue, duplicate arguments: SyntaxError with the line" {
    local case code want line
    while IFS='|' read -r line want code; do
        ask "$(printf "$code")"
        assert_equal "$(answer 'j["error"]["type"]')" SyntaxError
        assert_equal "$(answer 'j["error"]["line"]')" "$line"
        [[ "$(answer 'j["error"]["message"]')" == *"$want"* ]] || { echo "$code: $(answer j)"; return 1; }
    done <<'EOF'
2|'return' outside function|x = 1\nreturn 1
3|'yield' outside function|def f():\n    yield 1\nyield 2
1|'break' outside loop|break
2|'continue' not properly in loop|x = 1\ncontinue
1|duplicate argument 'a'|def f(a, a):\n    pass
2|nonlocal statements are not allowed|x = 1\nnonlocal x
1|'return' outside function at statement: 'return 1'|return 1
EOF
}

# --- 7. no internals on show -------------------------------------------------

@test "the snippet's builtins have plain names and reprs" {
    ask 'result = [repr(print), str(print), f"{print!r}", repr(hash), repr(len), repr(ImportError)]'
    assert_equal "$(answer 'j["result"]')" \
        '["<built-in function print>", "<built-in function print>", "<built-in function print>", "<built-in function hash>", "<built-in function len>", "<class '"'ImportError'"'>"]'
    ask 'result = print + 1'
    [[ "$(answer 'j["error"]["message"]')" != *pyexec* ]]
    [[ "$(answer 'j["error"]["message"]')" != *Printer* ]]
}

@test "no answer carries a memory address: results, output, error messages" {
    ask 'def f():
    pass
g = (x for x in [1])
result = [repr(f), repr(lambda: 0), repr(g), repr(map(abs, [])), repr(iter([])), repr(data.get), repr([].append), str(zip())]'
    assert_equal "$(answer 'j["result"]')" \
        '["<function f>", "<function <lambda>>", "<generator object <genexpr>>", "<map object>", "<list_iterator object>", "<built-in method get of dict object>", "<built-in method append of list object>", "<zip object>"]'
    ask 'print(lambda: 0, print, iter(()))'
    assert_equal "$(answer 'j["output"]')" '<function <lambda>> <built-in function print> <tuple_iterator object>'
    ask 'def f():
    pass
raise ValueError(f)'
    assert_equal "$(answer 'j["error"]["message"]')" '<function f>'
    ask 'result = {str(filter(None, [])): 1}'
    assert_equal "$(answer 'j["result"]')" '{"<filter object>": 1}'
}

@test "hash() of values works; of functions and other identity-hashed objects it is refused" {
    ask 'result = [hash(1) == 1, hash("a") == hash("a"), hash((1, "a", (2.5, None))) == hash((1, "a", (2.5, None)))]'
    assert_equal "$(answer 'j["result"]')" '[true, true, true]'
    local code
    for code in 'hash(print)' 'hash(lambda: 0)' 'hash(len)' 'hash(int)' 'hash((1, len))' 'hash(ValueError())'; do
        ask "result = $code"
        assert_equal "$(answer 'j["error"]["type"]')" TypeError
        [[ "$(answer 'j["error"]["message"]')" == *"memory address"* ]] || { echo "$code"; return 1; }
    done
    ask 'result = hash([])'
    assert_equal "$(answer 'j["error"]["message"]')" "unhashable type: 'list'"
}

@test "async comprehensions and async generator expressions are refused like the other async forms" {
    local code
    for code in 'result = (x async for x in data)' 'result = [x async for x in data]' \
            'result = {x async for x in data}' 'result = {x: 1 async for x in data}' \
            'f = lambda: [x async for x in data]' 'result = [y for y in (x async for x in data)]'; do
        ask "y = 1
$code"
        assert_equal "$(answer 'j["error"]["type"]')" SyntaxError
        assert_equal "$(answer 'j["error"]["line"]')" 2
        [[ "$(answer 'j["error"]["message"]')" == *"async comprehensions and generator expressions are not allowed"* ]] ||
            { echo "$code: $(answer j)"; return 1; }
    done
    assert_server_healthy
}
