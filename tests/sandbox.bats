#!/usr/bin/env bats
# The hostile-code suite: snippets that try to escape RestrictedPython (every
# published advisory and its variants), walk to frames and builtins, abuse
# format strings, unicode and the guards, or exhaust the worker; and hostile
# `data`.  Each answer must be exactly a 200 snippet failure of the expected
# type, carry nothing it should not, and leave the server answering.

setup_file() { load helpers; start_server; }
teardown_file() { load helpers; stop_server; }
setup() { load helpers; }

# --- helpers ---------------------------------------------------------------

# One Python process per request builds the body, sends it, writes the answer
# to a file and, given an expected error type, checks the answer's exact shape
# and that nothing leaked.  argv: URL KEY WANT ANSWER-FILE KIND ARGS...
#   KIND code CODE DATA-JSON LIMITS-JSON   code as written, data/limits spliced as JSON text
#   KIND py EXPR                           the JSON of a Python expression (huge bodies)
#   KIND file PATH                         the bytes of a file, unchanged
#   KIND check STATUS                      no request: check ANSWER-FILE as it is
CLIENT_PY='
import json, re, sys, urllib.error, urllib.request
sys.set_int_max_str_digits(0)
url, key, want, answer, kind, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6:]
# What must never appear in an answer: live objects, file contents, key material.
LEAKS = ["<module", "<frame", "<function", "<class", "<code object", "<traceback",
         "<generator", "built-in", "root:", "/bin/bash", "sk_test_", "sk_prod_",
         "sha256:", "pyexec_policy", "Printer object"]

def shape_problems(status, raw, want):
    problems = ["leaked %r" % m for m in LEAKS if m in raw]
    problems += ["memory address %r" % m for m in re.findall(r"0x[0-9a-fA-F]{6,}", raw)[:3]]
    if want == "-":
        return problems
    if status != 200:
        return problems + ["HTTP %s, expected 200" % status]
    j = json.loads(raw)
    err = j.get("error") if isinstance(j.get("error"), dict) else {}
    if sorted(j) != ["error", "output", "output_truncated", "stats", "success"]:
        problems.append("top-level keys %s" % sorted(j))
    if j.get("success") is not False:
        problems.append("success is %r" % j.get("success"))
    want, _, needle = want.partition("~")
    if err.get("type") != want:
        problems.append("error.type %r, expected %r" % (err.get("type"), want))
    if needle and needle not in str(err.get("message")):
        problems.append("error.message lacks %r" % needle)
    if not {"type", "message"} <= set(err) <= {"type", "message", "line", "message_truncated"}:
        problems.append("error keys %s" % sorted(err))
    if err.get("message_truncated", True) is not True:
        problems.append("error.message_truncated %r" % err["message_truncated"])
    if not isinstance(err.get("message"), str):
        problems.append("error.message is not a string")
    if "line" in err and not (type(err["line"]) is int and err["line"] > 0):
        problems.append("error.line %r" % err["line"])
    if not isinstance(j.get("output"), str) or not isinstance(j.get("output_truncated"), bool):
        problems.append("output fields %r %r" % (j.get("output"), j.get("output_truncated")))
    if sorted(j.get("stats") or {}) != ["cpu_ms", "max_rss_kib", "wall_ms"]:
        problems.append("stats %r" % j.get("stats"))
    return problems

if kind == "check":
    status, raw = int(args[0]), open(answer, encoding="utf-8").read()
else:
    if kind == "code":
        parts = ["\"code\": " + json.dumps(args[0], ensure_ascii=False)]
        if args[1]: parts.append("\"data\": " + args[1])
        if args[2]: parts.append("\"limits\": " + args[2])
        body = ("{" + ", ".join(parts) + "}").encode()
    elif kind == "py":
        body = json.dumps(eval(args[0]), ensure_ascii=False).encode()
    else:
        body = open(args[0], "rb").read()
    req = urllib.request.Request(url + "/execute", body, {"X-API-Key": key, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            status, raw = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read().decode()
    open(answer, "w", encoding="utf-8").write(raw)
print(status)
problems = shape_problems(status, raw, want) if want else []
if problems:
    print("; ".join(problems)); print(raw[:2000]); sys.exit(1)
'

# _client WANT KEY KIND ARGS...: run CLIENT_PY; sets STATUS and BODY.
_client() {
    local out rc=0 answer="$BATS_TEST_TMPDIR/answer.json"
    out=$(/usr/bin/python3 -I -S -c "$CLIENT_PY" "$URL" "${2:-$KEY}" "$1" "$answer" "${@:3}") || rc=$?
    STATUS=${out%%$'\n'*}
    BODY=$(cat "$answer" 2>/dev/null) || BODY=
    [ "$rc" = 0 ] || { printf '%s\n' "$out"; return 1; }
}

# post_code CODE [DATA-JSON] [LIMITS-JSON] [KEY]
post_code() { _client '' "${4-}" code "$1" "${2-}" "${3-}"; }
# post_py EXPR [KEY]: for bodies too big for a command line.
post_py() { _client '' "${2-}" py "$1"; }
# post_file FILE [KEY]
post_file() { _client '' "${2-}" file "$1"; }

# expect_failure TYPE[~NEEDLE]: the last answer is exactly a 200 snippet failure of TYPE,
# {"success": false, "error": {type, message[, line]}, "output", "output_truncated",
# "stats"}, and leaks nothing.
expect_failure() { _client "$1" '' check "$STATUS"; }

# expect_clean: the last answer leaks nothing, whatever its verdict.
expect_clean() { _client - '' check "$STATUS"; }

# body_get EXPR: like json_get, over the last answer (which may be megabytes).
body_get() {
    /usr/bin/python3 -I -S -c 'import json, sys; sys.set_int_max_str_digits(0)
j = json.load(open(sys.argv[2], encoding="utf-8")); v = eval(sys.argv[1])
print(json.dumps(v) if not isinstance(v, str) else v)' "$1" "$BATS_TEST_TMPDIR/answer.json"
}

# hostile TYPE[~NEEDLE] CODE [DATA-JSON] [LIMITS-JSON] [KEY]: run CODE, expect
# exactly a TYPE failure whose message contains NEEDLE (the reason: a typo in
# a snippet must not pass for a policy rejection) and that leaks nothing, then
# the server must still answer.  STATUS and BODY (and body_get) stay those of
# the hostile request, for more checks.
hostile() {
    _client "$1" "${5-}" code "$2" "${3-}" "${4-}"
    local status=$STATUS body=$BODY
    assert_server_healthy
    STATUS=$status BODY=$body
}

# error_field NAME: one field of the last answer's error object.
error_field() { body_get "j[\"error\"].get(\"$1\")"; }

# --- CVE-2023-37271: generator frames walked back to the builtins ---------

@test "CVE-2023-37271: gi_frame.f_back walk from a generator expression" {
    hostile 'SyntaxError~gi_frame' 'g = (x for x in [1])
result = g.gi_frame.f_back.f_back.f_globals["__builtins__"]'
    assert_equal "$(error_field line)" 2
}

@test "CVE-2023-37271: gi_frame.f_builtins read from inside a running generator" {
    hostile 'SyntaxError~gi_frame' 'def gen():
    yield me.gi_frame.f_builtins
me = gen()
result = next(me)'
}

@test "CVE-2023-37271 variant: gi_code.co_consts and f_code of a generator" {
    hostile 'SyntaxError~gi_code' 'g = (x for x in [1])
result = g.gi_code.co_consts'
}

@test "CVE-2023-37271 variant: gi_yieldfrom reaches the delegated iterator's frame" {
    hostile 'SyntaxError~gi_yieldfrom' 'def inner():
    yield 1
def outer():
    yield from inner()
g = outer()
next(g)
result = g.gi_yieldfrom.gi_frame'
}

@test "CVE-2023-37271 variant: f_locals and f_globals of a frame held in a list" {
    hostile 'SyntaxError~f_locals' 'frames = [(x for x in [1]).gi_frame]
result = [f.f_locals for f in frames] + [f.f_globals for f in frames]'
}

# --- CVE-2023-41039: str.format / format_map walking attributes -----------

@test "CVE-2023-41039: '{0.__class__}'.format(data)" {
    hostile 'SyntaxError~"format" is a forbidden attribute name' 'result = "{0.__class__.__base__.__subclasses__}".format(data)'
}

@test "CVE-2023-41039: format_map with a mapping of objects" {
    hostile 'SyntaxError~format_map' 'result = "{a.__class__.__mro__}".format_map({"a": 1})'
}

@test "CVE-2023-41039: the unbound str.format passed to map" {
    hostile 'SyntaxError~"format"' 'result = list(map(str.format, ["{0.__globals__}"], [lambda: 0]))'
}

@test "CVE-2023-41039: bound format method taken from a variable template" {
    hostile 'SyntaxError~"format"' 'fmt = "{0.__globals__[__builtins__]}"
f = fmt.format
result = f(lambda: 0)'
}

# --- CVE-2024-47532: the string module's Formatter ------------------------

@test "CVE-2024-47532: string.Formatter().vformat" {
    hostile 'SyntaxError~vformat' 'import string
result = string.Formatter().vformat("{0.__class__}", [1], {})'
}

@test "CVE-2024-47532: string.Formatter().get_field" {
    hostile 'SyntaxError~get_field' 'import string
result = string.Formatter().get_field("0.__class__.__base__", [1], {})'
}

@test "CVE-2024-47532: Formatter through an import alias" {
    hostile 'SyntaxError~"Formatter" is a forbidden attribute name' 'import string as s
F = s.Formatter
result = F().format("{0.__class__}", 1)'
}

@test "CVE-2024-47532: from string import Formatter (no attribute syntax at all)" {
    hostile "ImportError~import of 'string' is not allowed" 'from string import Formatter
result = Formatter()'
}

@test "CVE-2024-47532: string.Template cannot even be imported" {
    hostile "ImportError~import of 'string' is not allowed" 'import string
result = string.Template("${x}").substitute(x=data)'
}

@test "2026 Formatter traversal: subclassing string.Formatter" {
    hostile 'SyntaxError~class definitions are not allowed' 'import string
class F(string.Formatter):
    def get_value(self, key, args, kwargs):
        return args[key].__class__
result = F().format("{0}", 1)'
}

# --- CVE-2025-22153: except* (exception groups) ---------------------------

@test "CVE-2025-22153: try/except* is refused" {
    hostile 'SyntaxError~except*' 'try:
    1 / 0
except* ZeroDivisionError:
    result = 1'
    assert_equal "$(error_field line)" 1
}

@test "CVE-2025-22153 variant: except* reaching the grouped traceback" {
    hostile 'SyntaxError~except*' 'try:
    try:
        1 / 0
    except* ZeroDivisionError as eg:
        result = eg.exceptions[0].__traceback__.tb_frame
except Exception:
    pass'
}

# --- 2026: positional-only parameters shadowing the guards -----------------

@test "2026: def f(_getattr_=..., /) cannot shadow the attribute guard" {
    hostile 'SyntaxError~_getattr_' 'def f(_getattr_=lambda o, n: o, /):
    return data.__class__
result = f()'
}

@test "2026: def f(_write_=..., /) cannot shadow the write guard" {
    hostile 'SyntaxError~_write_' 'def f(_write_=lambda o: o, /):
    t = (1,)
    t.x = 1
result = f()'
}

@test "2026: def f(_getiter_, /) cannot shadow the iteration guard" {
    hostile 'SyntaxError~_getiter_' 'def f(_getiter_, /):
    return [x for x in data]
result = f(iter)'
}

@test "2026: lambda _getattr_=..., /: shadowing in a lambda" {
    hostile 'SyntaxError~_getattr_' 'f = lambda _getattr_=(lambda o, n: o), /: data.__class__
result = f()'
}

@test "2026: guard name spelt with full-width letters (NFKC) in a positional-only default" {
    hostile 'SyntaxError~"_getattr_" is an invalid variable name' 'def f(_ｇｅｔａｔｔｒ_=len, /):
    return 1
result = f()'
}

@test "2026: guard names as keyword-only, *args and **kwargs parameters" {
    hostile 'SyntaxError~_getitem_' 'def f(*_getattr_, _getitem_=None, **_write_):
    return 1
result = f()'
}

@test "2026: positional-only parameters are refused even with harmless names" {
    hostile 'SyntaxError~positional-only parameters are not allowed' 'def f(a, /):
    return a
result = f(1)'
}

@test "2026: positional-only parameters are refused with their line" {
    hostile 'SyntaxError~positional-only parameters are not allowed' 'x = 1
y = 2
def f(a, b=1, /, c=2):
    return a'
    assert_equal "$(error_field line)" 3
    [[ "$(error_field message)" != *None* ]]
}

# --- dunder and frame walks -----------------------------------------------

@test "dunder walk: ().__class__.__bases__[0].__subclasses__()" {
    hostile 'SyntaxError~__subclasses__' 'result = [c.__name__ for c in ().__class__.__bases__[0].__subclasses__()]'
}

@test "dunder walk: a lambda's __globals__ to __builtins__" {
    hostile 'SyntaxError~__globals__' 'result = (lambda: 0).__globals__["__builtins__"]["open"]'
}

@test "the name __builtins__ itself" {
    hostile 'SyntaxError~"__builtins__" is a forbidden name' 'result = __builtins__["open"]("/etc/passwd").read()'
}

@test "dunder walk: __mro__ to object" {
    hostile 'SyntaxError~__mro__' 'result = data.__class__.__mro__[-1].__subclasses__()'
}

@test "mro() without underscores" {
    hostile 'SyntaxError~"mro" is a forbidden attribute name' 'result = int.mro()'
}

@test "tb_frame from a caught exception's __traceback__" {
    hostile 'SyntaxError~tb_frame' 'try:
    1 / 0
except ZeroDivisionError as e:
    result = e.__traceback__.tb_frame.f_back.f_globals'
}

@test "tb_next and the frame of a chained exception's __context__" {
    hostile 'SyntaxError~tb_next' 'try:
    try:
        1 / 0
    except ZeroDivisionError:
        raise ValueError("second")
except ValueError as e:
    result = e.__context__.__traceback__.tb_next'
}

@test "the traceback through sys.exc_info()" {
    hostile "ImportError~import of 'sys' is not allowed" 'try:
    1 / 0
except ZeroDivisionError:
    import sys
    result = sys.exc_info()[2]'
    assert_equal "$(error_field line)" 4
}

@test "the traceback through a generator's throw()" {
    hostile 'SyntaxError~__traceback__' 'def g():
    yield 1
it = g()
next(it)
try:
    it.throw(ValueError("x"))
except ValueError as e:
    result = e.__traceback__'
}

@test "print's bound method: __self__ walked to the Printer" {
    hostile 'SyntaxError~__self__' 'result = print.__self__.__dict__'
}

@test "the Printer does not leak through AttributeError.obj (print flush=True)" {
    post_code 'leak = None
try:
    print("x", flush=True)
except AttributeError as e:
    leak = [repr(e.obj), e.obj.txt]
result = [leak, printed]'
    assert_equal "$STATUS" 200
    expect_clean
    assert_equal "$(body_get 'j.get("result")')" '[null, "x\n"]'
}

# --- getattr, vars, dir and type are not there ----------------------------

@test "getattr with a dunder key" {
    hostile "NameError~name 'getattr' is not defined" 'result = getattr(data, "__class__")'
}

@test "the guard _getattr_ called by name" {
    hostile 'SyntaxError~_getattr_' 'result = _getattr_(data, "__class__")'
}

@test "vars() of an object" {
    hostile "NameError~name 'vars' is not defined" 'result = vars(data)'
}

@test "dir() of the module" {
    hostile "NameError~name 'dir' is not defined" 'result = dir()'
}

@test "type(x) to reach a type object" {
    hostile "NameError~name 'type' is not defined" 'result = type(data)'
}

@test "type(x)(...) to build a class" {
    hostile "NameError~name 'type' is not defined" 'Evil = type("Evil", (), {"x": 1})
result = Evil()'
}

@test "setattr on a builtin type" {
    hostile "NameError~name 'setattr' is not defined" 'setattr(int, "x", 1)'
}

@test "an attribute named _ is refused at run time" {
    hostile 'AttributeError~invalid attribute name' 'result = data._'
}

# --- unicode identifiers normalised before the policy sees them -----------

@test "full-width low line ＿ (U+FF3F) in place of underscores" {
    hostile 'SyntaxError~U+FF3F' 'result = ＿＿import＿＿("os")'
}

@test "full-width low line inside a dunder name normalises to __builtins__" {
    hostile 'SyntaxError~"__builtins__" is a forbidden name' 'x = __builtins＿_'
}

@test "full-width letters in a dunder attribute: data.__ｃｌａｓｓ__" {
    hostile 'SyntaxError~"__class__" is an invalid attribute name' 'result = data.__ｃｌａｓｓ__'
}

@test "subscript i (ᵢ, U+1D62) in gᵢ_frame normalises to gi_frame" {
    hostile 'SyntaxError~"gi_frame" is a forbidden attribute name' 'g = (x for x in [1])
result = g.gᵢ_frame'
}

@test "full-width ｅval is eval" {
    hostile 'SyntaxError~Eval calls are not allowed' 'result = ｅval("1 + 1")'
}

@test "script-letter ℯxec (U+212F) is exec" {
    hostile 'SyntaxError~Exec calls are not allowed' 'ℯxec("x = 1")'
}

@test "full-width ｏｐｅｎ is open, which does not exist" {
    hostile "NameError~name 'open' is not defined" 'result = ｏｐｅｎ("/etc/passwd").read()'
}

# --- class and decorator tricks -------------------------------------------

@test "class definitions are refused" {
    hostile 'SyntaxError~class definitions are not allowed' 'class A:
    pass
result = A'
}

@test "a class with a metaclass keyword" {
    hostile 'SyntaxError~class definitions are not allowed' 'class M(Exception, metaclass=dict):
    pass'
}

@test "a decorator that reads the function's __globals__" {
    hostile 'SyntaxError~__globals__' '@(lambda fn: fn.__globals__["__builtins__"])
def f():
    pass
result = f["open"]'
}

@test "a decorator that returns a builtin, then __self__ walked from it" {
    hostile 'SyntaxError~__self__' 'def deco(fn):
    return len
@deco
def f():
    pass
result = f.__self__'
}

# --- import, open, exec, eval, compile, globals, memoryview ---------------

@test "import os" {
    hostile "ImportError~import of 'os' is not allowed" 'import os
result = os.listdir("/")'
}

@test "from os import system" {
    hostile "ImportError~import of 'os' is not allowed" 'from os import system
system("id")'
}

@test "__import__ called by name" {
    hostile 'SyntaxError~__import__' 'result = __import__("os").system("id")'
}

@test "import of the embedded _pyexec module" {
    hostile 'SyntaxError~_pyexec' 'import _pyexec
_pyexec.write("x")'
}

@test "open a file" {
    hostile "NameError~name 'open' is not defined" 'result = open("/etc/passwd").read()'
}

@test "exec a string" {
    hostile 'SyntaxError~Exec calls are not allowed' 'exec("import os")'
}

@test "eval a string" {
    hostile 'SyntaxError~Eval calls are not allowed' 'result = eval("1 + 1")'
}

@test "compile a string" {
    hostile "NameError~name 'compile' is not defined" 'result = compile("1", "<x>", "eval")'
}

@test "globals()" {
    hostile "NameError~name 'globals' is not defined" 'result = globals()["_getattr_"]'
}

@test "locals()" {
    hostile "NameError~name 'locals' is not defined" 'result = locals()'
}

@test "memoryview" {
    hostile "NameError~name 'memoryview' is not defined" 'result = memoryview(b"abc").obj'
}

@test "breakpoint()" {
    hostile 'SyntaxError~breakpoint' 'breakpoint()'
}

@test "match statements (class patterns read attributes in C)" {
    hostile 'SyntaxError~Match statements are not allowed' 'match data:
    case dict(__class__=c):
        result = c'
}

@test "async def (coroutine frames)" {
    hostile 'SyntaxError~AsyncFunctionDef statements are not allowed' 'async def f():
    return 1
result = f().cr_frame'
}

# --- format strings over objects ------------------------------------------

@test "f-string with !r over a dunder attribute" {
    hostile 'SyntaxError~__class__' 'result = f"{data.__class__!r}"'
}

@test "f-string nested format spec taken from a dunder attribute" {
    hostile 'SyntaxError~__class__' 'result = f"{1:{data.__class__}}"'
}

@test "f-string nested spec that is itself a format field" {
    hostile 'ValueError~Invalid format specifier' "result = f\"{1:{'{0.__class__}'}}\""
}

@test "f-string !r with a nested spec naming __globals__" {
    hostile 'ValueError~Invalid format specifier' "result = f\"{data!r:>{'{0.__globals__}'}}\"" '"x"'
}

# --- resource bombs -------------------------------------------------------

@test "while True: pass ends in TimeoutError" {
    hostile 'TimeoutError~wall time limit of 500 ms exceeded' 'while True:
    pass' '' '{"timeout_ms": 500}'
}

@test "10**10**10 ends in TimeoutError" {
    hostile 'TimeoutError~wall time' 'result = 10**10**10' '' '{"timeout_ms": 500}'
}

@test "quadratic int-to-str of 10**10**6 is refused at once by CPython's digit limit" {
    hostile 'ValueError~Exceeds the limit (4300 digits)' 'result = len(str(10**10**6))' '' '{"timeout_ms": 500}'
}

@test "\"a\" * 10**10 is a MemoryError" {
    hostile 'MemoryError~memory limit' 'result = "a" * 10**10'
    assert_equal "$(error_field line)" 1
}

@test "a list that doubles in a loop is a MemoryError" {
    hostile 'MemoryError~memory limit' 'a = [1]
while True:
    a = a + a'
}

@test "catching MemoryError and trying again forever ends in TimeoutError" {
    hostile 'TimeoutError~wall time' 'while True:
    try:
        x = "a" * 10**10
    except Exception:
        pass' '' '{"timeout_ms": 500}'
}

@test "deep recursion is a RecursionError" {
    hostile 'RecursionError~maximum recursion depth' 'def f(n):
    return f(n + 1)
result = f(0)'
    assert_equal "$(error_field line)" 2
}

@test "printing 10**9 lines: OutputLimitExceeded, output kept and truncated" {
    hostile 'OutputLimitExceeded~65536 bytes' 'for i in range(10**9):
    print(i)'
    assert_equal "$(body_get 'j["output_truncated"]')" true
    assert_equal "$(body_get 'len(j["output"])')" 65536
    assert_equal "$(body_get 'j["output"].startswith("0\n1\n2\n3\n")')" true
}

@test "a 100 MiB result is ResultTooLarge" {
    # The prod key's 256 MiB lets the string be built; the 1 MiB result cap refuses it.
    hostile 'ResultTooLarge~1048576 bytes' 'result = "x" * (100 * 2**20)' '' '' "$PROD_KEY"
}

@test "output printed before a timeout is returned" {
    hostile 'TimeoutError~wall time' 'print("before the loop")
while True:
    pass' '' '{"timeout_ms": 500}'
    assert_equal "$(body_get 'j["output"]')" "before the loop"
    assert_equal "$(body_get 'j["output_truncated"]')" false
}

@test "a 100000-term expression: RecursionError while compiling" {
    post_py '{"code": "result = 1" + " + 1" * 100000}'
    expect_failure "RecursionError~maximum recursion depth"
    assert_server_healthy
}

@test "100000 nested unary minus: MemoryError from the parser" {
    post_py '{"code": "result = " + "-" * 100000 + "1"}'
    expect_failure MemoryError
    assert_server_healthy
}

@test "1000 nested brackets: SyntaxError" {
    post_py '{"code": "result = " + "[" * 1000 + "]" * 1000}'
    expect_failure "SyntaxError~too many nested parentheses"
    assert_server_healthy
}

@test "a result nested 300000 deep is ResultNotSerializable" {
    hostile 'ResultNotSerializable~nests deeper' 'a = []
for i in range(300000):
    a = [a]
result = a'
}

@test "repr of a 300000-deep structure is a RecursionError" {
    hostile 'RecursionError~maximum recursion depth' 'a = {}
for i in range(300000):
    a = {"a": a}
result = repr(a)'
}

@test "a raised exception with a 1 MB message is cut to 1023 bytes, and marked" {
    hostile ValueError 'raise ValueError("x" * 10**6)'
    assert_equal "$(body_get 'len(j["error"]["message"])')" 1023
    assert_equal "$(error_field message_truncated)" true
}

@test "an exception message with a lone surrogate keeps its line and text" {
    hostile 'ValueError~bad' 'x = 1
raise ValueError("bad \ud800 value")'
    assert_equal "$(error_field line)" 2
}

@test "a 300000-deep chain of map() iterators is a clean error, not a worker crash" {
    # The prod key's 5 s: the sanitizer build needs ~3 s to overflow its stack.
    hostile RecursionError 'x = [1]
for i in range(300000):
    x = map(abs, x)
result = list(x)' '' '' "$PROD_KEY"
}

@test "a 100000-deep chain of generator expressions is a clean error, not a worker crash" {
    hostile RecursionError 'x = [1]
for i in range(100000):
    x = (i for i in x)
result = next(x)' '' '' "$PROD_KEY"
}

# --- no view of other requests --------------------------------------------

@test "variables and data changes do not survive into the next request" {
    post_code 'data["planted"] = "from request one"
leftover = 1
result = data' '{"mine": 1}'
    assert_equal "$STATUS" 200
    assert_equal "$(body_get 'j["result"]')" '{"mine": 1, "planted": "from request one"}'
    hostile "NameError~name 'leftover' is not defined" 'result = leftover'
    post_code 'result = [data, printed]'
    assert_equal "$(body_get 'j["result"]')" '[{}, ""]'
}

@test "no way to find or signal sibling workers: os and signal do not import" {
    local mod
    for mod in os signal posix; do
        post_code "import $mod
$mod.kill(1, 9)"
        expect_failure ImportError || { echo "module $mod"; return 1; }
    done
    assert_server_healthy
}

@test "a concurrent request's secret data is invisible" {
    curl -s -o "$BATS_TEST_TMPDIR/slow.json" -X POST "$URL/execute" -H "X-API-Key: $KEY" \
        -H 'Content-Type: application/json' \
        -d '{"code": "while True:\n    pass", "data": {"secret": "TOPSECRET-42"}, "limits": {"timeout_ms": 1500}}' &
    local slow=$!
    sleep 0.3
    post_code 'result = [data, printed]'
    assert_equal "$(body_get 'j["result"]')" '[{}, ""]'
    [[ "$BODY" != *TOPSECRET* ]]
    wait "$slow"
    grep -q '"TimeoutError"' "$BATS_TEST_TMPDIR/slow.json"
    ! grep -q TOPSECRET "$BATS_TEST_TMPDIR/slow.json"
}

# --- hostile data ---------------------------------------------------------

@test "data nested 100000 deep is 400 InvalidJSON (cJSON's limit is 1000)" {
    /usr/bin/python3 -c 'import sys; open(sys.argv[1], "w").write("{\"code\": \"result = data\", \"data\": " + "[" * 100000 + "]" * 100000 + "}")' \
        "$BATS_TEST_TMPDIR/deep.json"
    post_file "$BATS_TEST_TMPDIR/deep.json"
    assert_equal "$STATUS" 400
    assert_equal "$(body_get 'j["error"]["type"]')" InvalidJSON
    assert_equal "$(body_get 'j["success"]')" false
    assert_server_healthy
}

@test "a 1 MB data string round-trips" {
    post_py '{"code": "result = data", "data": "q" * 1000000}'
    assert_equal "$STATUS" 200
    assert_equal "$(body_get 'j["success"] and j["result"] == "q" * 1000000')" true
    assert_server_healthy
}

@test "a 20000-digit integer arrives exactly, and is refused as a result" {
    post_py '{"code": "result = [data % 1000, data // 10**19997]", "data": int("7" * 20000)}'
    assert_equal "$STATUS" 200
    assert_equal "$(body_get 'j["result"]')" '[777, 777]'
    post_py '{"code": "result = [data]", "data": int("7" * 20000)}'
    expect_failure 'ResultNotSerializable~more than 4300 digits'
    assert_server_healthy
}

@test "data keys named like guards and dunders are only data" {
    post_code 'result = [data["__builtins__"], data["_getattr_"], sorted(data)]' \
        '{"__builtins__": "plain", "_getattr_": "also plain"}'
    assert_equal "$STATUS" 200
    expect_clean
    assert_equal "$(body_get 'j["result"]')" '["plain", "also plain", ["__builtins__", "_getattr_"]]'
    hostile 'SyntaxError~__builtins__' 'result = data.__builtins__' '{"__builtins__": 1}'
}
