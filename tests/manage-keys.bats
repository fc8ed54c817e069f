#!/usr/bin/env bats
# manage-keys: the CLI, the keys file it writes, and its locking and atomicity.
# Runs build/manage-keys, or $MANAGE_KEYS (e.g. build-asan/manage-keys).

bats_require_minimum_version 1.5.0
load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

KEY_RE='^sk_test_[0-9a-f]{48}$'

setup() {
    MK=${MANAGE_KEYS:-$BATS_TEST_DIRNAME/../build/manage-keys}
    KEYS=$BATS_TEST_TMPDIR/api_keys.json
    unset PYEXEC_KEYS
    # A sanitizer report must not pass for an expected exit 1 (a caller's own
    # settings come later and win).
    export ASAN_OPTIONS="exitcode=99${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
    export UBSAN_OPTIONS="exitcode=99:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
}

mk() { "$MK" --keys "$KEYS" "$@"; }

py() { /usr/bin/python3 -c "$@"; }

# The sorted ids in the keys file; fails unless it is valid JSON of the right shape.
key_ids() {
    py 'import json, sys
d = json.load(open(sys.argv[1]))
assert d["version"] == 1 and isinstance(d["keys"], list)
print("\n".join(sorted(e["id"] for e in d["keys"])))' "$KEYS"
}

key_count() { py 'import json, sys; print(len(json.load(open(sys.argv[1]))["keys"]))' "$KEYS"; }

# Field $2 of the entry with id $1, as JSON.
field() {
    py 'import json, sys
d = json.load(open(sys.argv[1]))
print(json.dumps([e for e in d["keys"] if e["id"] == sys.argv[2]][0][sys.argv[3]]))' "$KEYS" "$1" "$2"
}

sha256_of() { printf %s "$1" | sha256sum | cut -d' ' -f1; }

# An entry for hand-made files: id suffix $1 (one hex digit), extra JSON fields $2.
entry() {
    printf '{"id": "key_000000000000000%s", "name": "n%s", "description": "", "env": "test",
 "created": "2026-11-26T12:00:00Z", "revoked_at": null, "prefix": "sk_test_0000",
 "hash": "sha256:%s"%s}' "$1" "$1" "$(sha256_of "throwaway-$1")" "${2:-}"
}

# ---- usage -----------------------------------------------------------------

@test "--help, -h and help print usage on stdout and exit 0" {
    for arg in --help -h help; do
        run --separate-stderr "$MK" "$arg"
        assert_success
        assert_output --partial 'Usage: manage-keys'
        [ -z "$stderr" ]
    done
}

@test "no command: one line on stderr with a hint, exit 2" {
    run --separate-stderr "$MK"
    assert_failure 2
    [ -z "$output" ]
    [ "$stderr" = "manage-keys: no command given; see 'manage-keys --help'" ]
}

@test "unknown command or option: one line on stderr with a hint, exit 2" {
    run --separate-stderr mk frobnicate
    assert_failure 2
    [ -z "$output" ]
    [ "$stderr" = "manage-keys: unknown command 'frobnicate'; see 'manage-keys --help'" ]

    run --separate-stderr mk list --verbose
    assert_failure 2
    [ -z "$output" ]
    [ "$stderr" = "manage-keys: unknown option '--verbose' for 'list'; see 'manage-keys list --help'" ]
    # Before the command, and as --option=VALUE, too.
    run --separate-stderr mk --nmae=x add --env test
    assert_failure 2
    [ "$stderr" = "manage-keys: unknown option '--nmae' for 'add'; see 'manage-keys add --help'" ]
    run --separate-stderr "$MK" --nmae
    assert_failure 2
    [ "$stderr" = "manage-keys: unknown option '--nmae'; see 'manage-keys --help'" ]
    run --separate-stderr mk help frobnicate
    assert_failure 2
    [ -z "$output" ]
    [ "$stderr" = "manage-keys: unknown command 'frobnicate'; see 'manage-keys --help'" ]

    run mk export --json
    assert_failure 2
    run mk list --name x
    assert_failure 2
    run mk revoke
    assert_failure 2
    run mk revoke a b
    assert_failure 2
    run mk add --name
    assert_failure 2
    run mk add --name a --name b --env test
    assert_failure 2
    run "$MK" --keys '' list
    assert_failure 2
    [ ! -e "$KEYS" ]
}

@test "every usage error of every command exits 2 with one line and a hint" {
    for args in 'add --name' 'add --name a --name b --env test' 'add --bogus' 'add x --name a --env test' \
        'add --name a --env staging' 'add --name a --env test --rate fast' 'add --env test' \
        'set' 'set --name x' 'set k --bogus' 'set k' 'set k --concurrency 0' 'set k --rate' \
        'list --bogus' 'list extra' 'list --force' 'list --json --json --rate' \
        'revoke' 'revoke a b' 'revoke k --bogus' 'revoke k --out f' \
        'usage --bogus' 'usage --state' 'usage --state ""' 'usage x' \
        'export --bogus' 'export x' 'export --out' 'export --json' \
        'import' 'import a b' 'import --bogus f' 'import --period 5 f' \
        'export-haproxy-limits --bogus' 'export-haproxy-limits --period x' \
        'export-haproxy-limits --test-rate 5/week' 'export-haproxy-limits x' \
        'help a b' 'help nope' 'nope' ''; do
        eval "set -- $args"
        run --separate-stderr mk "$@"
        [ "$status" -eq 2 ] || { echo "exit $status for '$args': $stderr"; false; }
        [ -z "$output" ]
        [ "${#stderr_lines[@]}" -eq 1 ] || { echo "for '$args': $stderr"; false; }
        [[ $stderr == "manage-keys: "*"; see 'manage-keys "*"--help'" ]]
    done
    [ ! -e "$KEYS" ]
}

@test "runtime errors exit 1, and the help says which exit status is which" {
    run mk revoke key_0123456789abcdef          # no keys file: no such key
    assert_failure 1
    run mk export                               # no keys file to export
    assert_failure 1
    run mk import "$BATS_TEST_TMPDIR/missing"   # no such file
    assert_failure 1
    printf 'not json' > "$KEYS"
    run mk list
    assert_failure 1
    run --separate-stderr "$MK" --help
    [[ $output == *"Exit status: 0 success; 1 failure"*"2 usage error (unknown command or option,"* ]]
}

@test "each command's --help, and help COMMAND, print that command's help only" {
    run --separate-stderr "$MK" --help
    assert_success
    [ -z "$stderr" ]
    overview=$output
    [[ $overview == *"Commands:"* ]]
    for c in add set list revoke usage export import export-haproxy-limits; do
        [[ $overview == *$'\n'"  $c "* ]] || { echo "$c missing from the overview"; false; }
        for how in "$c --help" "$c -h" "help $c" "--keys x $c --help"; do
            # shellcheck disable=SC2086
            run --separate-stderr "$MK" $how
            assert_success
            [ -z "$stderr" ]
            [[ ${lines[0]} == "Usage: manage-keys [--keys PATH] $c"* ]] || { echo "$how: ${lines[0]}"; false; }
            [[ $output != *"Commands:"* ]]
            [ "${#lines[@]}" -lt 30 ] || { echo "$how: ${#lines[@]} lines"; false; }
            [[ $output == *"--keys PATH"* && $output == *"Exit status:"* ]]
        done
    done
    # Each shows its own options, not the others'.
    run "$MK" add --help
    assert_output --partial '--env test|prod'
    refute_output --partial '--period'
    refute_output --partial '--state'
    run "$MK" export-haproxy-limits --help
    assert_output --partial '--period S'
    refute_output --partial '--env'
    run "$MK" usage --help
    assert_output --partial '--state DIR'
    refute_output --partial '--rate'
    # help alone and help --help.
    run --separate-stderr "$MK" help
    assert_success
    [ "$output" = "$overview" ]
    run --separate-stderr "$MK" help --help
    assert_success
    assert_output --partial 'Usage: manage-keys help [COMMAND]'
}

@test "--version: manage-keys and pyexec print the same version; pyexec leaves stdin alone" {
    PYEXEC=${PYEXEC_BIN:-$BATS_TEST_DIRNAME/../build/pyexec}
    run --separate-stderr "$MK" --version
    assert_success
    [ -z "$stderr" ]
    [[ $output =~ ^manage-keys\ ([^[:space:]]+)$ ]]
    v=${BASH_REMATCH[1]}
    [ "$v" != unknown ]
    run --separate-stderr mk list --version
    assert_output "manage-keys $v"
    # stdin is where systemd puts the connection: --version must not read it.
    run --separate-stderr bash -c 'printf "GET /health HTTP/1.0\r\n\r\n" | { "$1" --version; echo "rc=$?"; cat; }' _ "$PYEXEC"
    assert_success
    [ -z "$stderr" ]
    [ "${lines[0]}" = "pyexec $v" ]
    [ "${lines[1]}" = "rc=0" ]
    [ "${lines[2]}" = $'GET /health HTTP/1.0\r' ]
    # Any other argument is still refused.
    run "$PYEXEC" --help </dev/null
    assert_failure 2
}

teardown() {
    if [ -n "${SERVER_STARTED:-}" ]; then
        load helpers
        stop_server
    fi
}

@test "add --json: one line of strict JSON with the id and the key, which pyexec accepts" {
    load helpers
    start_server
    SERVER_STARTED=1
    run --separate-stderr "$MANAGE_KEYS" add --name 'Jay "Son"' --description 'ünï' --env prod \
        --rate 100/min --json
    assert_success
    [ "${#lines[@]}" -eq 1 ]
    [[ $stderr == *"manage-keys: added key_"* ]]
    KEYS=$PYEXEC_KEYS
    run py 'import json, sys, hashlib
d = json.loads(sys.argv[1], parse_constant=lambda c: 1 / 0)
assert list(d)[:2] == ["id", "key"], d
assert d["name"] == "Jay \"Son\"" and d["description"] == "ünï" and d["env"] == "prod", d
assert d["rate"] == "100/min" and d["scope"] == ["execute"] and d["revoked_at"] is None, d
assert "hash" not in d, d
f = [e for e in json.load(open(sys.argv[2]))["keys"] if e["id"] == d["id"]][0]
assert f["hash"] == "sha256:" + hashlib.sha256(d["key"].encode()).hexdigest()
assert f["prefix"] == d["prefix"] == d["key"][:12]
print(d["key"])' "$output" "$KEYS"
    assert_success
    newkey=$output
    [[ $newkey =~ ^sk_prod_[0-9a-f]{48}$ ]]
    post_execute '{"code": "result = 6 * 7"}' "$newkey"
    [ "$STATUS" = 200 ] || { echo "$STATUS $BODY"; false; }
    [ "$(json_get "$BODY" 'j["result"]')" = 42 ]
    # manage-keys finds it by the key, too.
    run mk revoke "$newkey"
    assert_success
}

@test "list and usage warn on stderr when the keys file or state directory is missing" {
    run --separate-stderr mk list
    assert_success
    [ "$stderr" = "manage-keys: warning: keys file $KEYS does not exist" ]
    assert_line --regexp '^ID +NAME'
    run --separate-stderr mk usage --json --state "$BATS_TEST_TMPDIR/nostate"
    assert_success
    assert_output '[]'
    [[ $stderr == *"manage-keys: warning: keys file $KEYS does not exist"* ]]
    [[ $stderr == *"manage-keys: warning: state directory $BATS_TEST_TMPDIR/nostate does not exist"* ]]
    mk add --name a --env test >/dev/null 2>&1
    mkdir "$BATS_TEST_TMPDIR/state"
    run --separate-stderr mk list
    assert_success
    [ -z "$stderr" ]
    run --separate-stderr mk usage --state "$BATS_TEST_TMPDIR/state"
    assert_success
    [ -z "$stderr" ]
}

@test "every command that reads the keys file warns once when others may read or write it" {
    mk add --name a --env test >/dev/null 2>&1
    mk export --out "$BATS_TEST_TMPDIR/exp.json" 2>/dev/null
    mkdir "$BATS_TEST_TMPDIR/state"
    id=$(key_ids)
    chmod 644 "$KEYS"
    want="manage-keys: warning: keys file $KEYS is readable by others (mode 0644); run chmod 600 $KEYS"
    for args in 'list' 'list --json' "usage --state $BATS_TEST_TMPDIR/state" 'add --name b --env test' \
        "set $id --rate 5/min" 'export' 'export-haproxy-limits' "revoke $id" \
        "import --force $BATS_TEST_TMPDIR/exp.json"; do
        # shellcheck disable=SC2086
        run --separate-stderr mk $args
        [ "$status" -eq 0 ] || { echo "exit $status for $args: $stderr"; false; }
        [ "$(grep -cF "warning: keys file" <<< "$stderr")" -eq 1 ] || { echo "$args: $stderr"; false; }
        [[ $stderr == *"$want"* ]] || { echo "$args: $stderr"; false; }
    done
    chmod 620 "$KEYS"
    run --separate-stderr mk list
    [[ $stderr == *"is writable by others (mode 0620); run chmod 600 $KEYS"* ]]
    chmod 606 "$KEYS"
    run --separate-stderr mk list
    [[ $stderr == *"is readable and writable by others (mode 0606)"* ]]
    chmod 600 "$KEYS"
    run --separate-stderr mk list
    [ -z "$stderr" ]
    # A usage error or --help does not look at the file.
    chmod 644 "$KEYS"
    run --separate-stderr mk list --help
    [ -z "$stderr" ]
}

# ---- add -------------------------------------------------------------------

@test "add prints the key alone on stdout, the rest on stderr" {
    run --separate-stderr mk add --name "Test Client" --description "For testing" --env test
    assert_success
    [ "${#lines[@]}" -eq 1 ]
    [[ $output =~ $KEY_RE ]]
    [[ $stderr == *"manage-keys: added key_"* ]]
    [[ $stderr != *"$output"* ]]
}

@test "add --env prod makes an sk_prod_ key" {
    run --separate-stderr mk add --name p --env prod
    assert_success
    [[ $output =~ ^sk_prod_[0-9a-f]{48}$ ]]
}

@test "the file holds the key's hash and metadata, never the key" {
    KEY=$(mk add --name "Test Client" --description "For testing" --env test 2>/dev/null)
    [[ $KEY =~ $KEY_RE ]]
    run grep -F "${KEY#sk_test_}" "$KEYS"
    assert_failure
    run /usr/bin/python3 -m json.tool "$KEYS"
    assert_success
    id=$(key_ids)
    [[ $id =~ ^key_[0-9a-f]{16}$ ]]
    [ "$(field "$id" hash)" = "\"sha256:$(sha256_of "$KEY")\"" ]
    [ "$(field "$id" prefix)" = "\"${KEY:0:12}\"" ]
    [ "$(field "$id" name)" = '"Test Client"' ]
    [ "$(field "$id" description)" = '"For testing"' ]
    [ "$(field "$id" env)" = '"test"' ]
    [ "$(field "$id" revoked_at)" = null ]
    [[ $(field "$id" created) =~ ^\"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z\"$ ]]
    [ "$(stat -c %a "$KEYS")" = 600 ]
}

@test "add without a good --name or --env is a usage error (exit 2) and writes nothing" {
    run --separate-stderr mk add --env test
    assert_failure 2
    [ -z "$output" ]
    [[ $stderr == *"manage-keys: add needs --name"*"; see 'manage-keys add --help'" ]]

    run mk add --name '' --env test
    assert_failure 2
    run --separate-stderr mk add --name x
    assert_failure 2
    [[ $stderr == *"--env"* ]]
    run --separate-stderr mk add --name x --env dev
    assert_failure 2
    [[ $stderr == *'--env must be test or prod, not "dev"'* ]]
    run mk add --name $'two\nlines' --env test
    assert_failure 2
    run mk add --name x --description $'\xff' --env test
    assert_failure 2
    [ ! -e "$KEYS" ]
}

@test "--keys works after the command and as --keys=PATH, and beats \$PYEXEC_KEYS" {
    export PYEXEC_KEYS=$BATS_TEST_TMPDIR/env.json
    "$MK" add --name env --env test >/dev/null 2>&1
    "$MK" add --name after --env test --keys "$BATS_TEST_TMPDIR/after.json" >/dev/null 2>&1
    "$MK" --keys="$BATS_TEST_TMPDIR/eq.json" add --name eq --env test >/dev/null 2>&1
    KEYS=$PYEXEC_KEYS
    [ "$(key_count)" -eq 1 ]
    KEYS=$BATS_TEST_TMPDIR/after.json
    [ "$(key_count)" -eq 1 ]
    KEYS=$BATS_TEST_TMPDIR/eq.json
    [ "$(key_count)" -eq 1 ]
}

@test "rewriting keeps the file's mode and unknown fields" {
    printf '{"version": 1, "comment": {"kept": true}, "keys": [%s]}\n' \
        "$(entry 1 ', "x_limits": {"per_minute": 60}, "scope": ["execute"]')" > "$KEYS"
    chmod 640 "$KEYS"
    mk add --name new --env test >/dev/null 2>&1
    [ "$(stat -c %a "$KEYS")" = 640 ]
    [ "$(key_count)" -eq 2 ]
    [ "$(py 'import json, sys; print(json.dumps(json.load(open(sys.argv[1]))["comment"]))' "$KEYS")" \
        = '{"kept": true}' ]
    [ "$(field key_0000000000000001 x_limits)" = '{"per_minute": 60}' ]
    [ "$(field key_0000000000000001 scope)" = '["execute"]' ]
}

@test "a symlinked keys file is refused, not replaced" {
    mk add --name a --env test >/dev/null 2>&1
    ln -s "$KEYS" "$BATS_TEST_TMPDIR/link.json"
    run "$MK" --keys "$BATS_TEST_TMPDIR/link.json" add --name b --env test
    assert_failure 1
    assert_output --partial "symbolic link"
    [ -L "$BATS_TEST_TMPDIR/link.json" ]
}

# ---- list ------------------------------------------------------------------

@test "list of a missing file: an empty list, exit 0" {
    run --separate-stderr mk list
    assert_success
    assert_line --regexp '^ID +NAME +ENV +CREATED +REVOKED +PREFIX +RATE +CONCURRENCY +SCOPE +DESCRIPTION$'
    run --separate-stderr mk list --json
    assert_success
    assert_output '[]'
    [ ! -e "$KEYS" ]
}

@test "list shows every key's metadata, never a key or a hash" {
    KEY1=$(mk add --name "First Client" --description "the first" --env test 2>/dev/null)
    KEY2=$(mk add --name second --env prod 2>/dev/null)
    run --separate-stderr mk list
    assert_success
    [ "${#lines[@]}" -eq 3 ]
    assert_line --index 0 --regexp '^ID +NAME +ENV +CREATED +REVOKED +PREFIX +RATE +CONCURRENCY +SCOPE +DESCRIPTION$'
    assert_output --regexp "key_[0-9a-f]{16} +First Client +test +[0-9T:Z-]+ +no +${KEY1:0:12} +default +default +execute +the first"
    assert_output --partial "${KEY2:0:12}"
    refute_output --partial "$KEY1"
    refute_output --partial "$KEY2"
    refute_output --partial "$(sha256_of "$KEY1")"
    refute_output --partial sha256
}

@test "list --json is valid JSON with the documented fields and no hash" {
    KEY=$(mk add --name "Test Client" --description "For testing" --env test 2>/dev/null)
    run --separate-stderr mk list --json
    assert_success
    refute_output --partial "$KEY"
    refute_output --partial hash
    printf '%s\n' "$output" > "$BATS_TEST_TMPDIR/list.json"
    run /usr/bin/python3 -m json.tool "$BATS_TEST_TMPDIR/list.json"
    assert_success
    run py 'import json, sys
l = json.load(open(sys.argv[1]))
assert isinstance(l, list) and len(l) == 1
e = l[0]
assert sorted(e) == sorted(["id", "name", "description", "env", "created", "revoked",
                            "revoked_at", "prefix", "rate", "concurrency", "scope"]), e
assert e["rate"] is None and e["concurrency"] is None and e["scope"] == ["execute"], e
assert e["name"] == "Test Client" and e["description"] == "For testing" and e["env"] == "test"
assert e["revoked"] is False and e["revoked_at"] is None
assert e["prefix"] == sys.argv[2][:12]' "$BATS_TEST_TMPDIR/list.json" "$KEY"
    assert_success
}

@test "the sample keys file is valid and holds one revoked example with limits and scopes" {
    run --separate-stderr "$MK" --keys "$BATS_TEST_DIRNAME/../api_keys.json.sample" list --json
    assert_success
    run py 'import json, sys
l = json.loads(sys.argv[1])
assert len(l) == 1 and l[0]["revoked"] is True, l
assert l[0]["rate"] == "120/min" and l[0]["concurrency"] == 8, l
assert l[0]["scope"] == ["execute", "admin"], l' "$output"
    assert_success
    run "$MK" --keys "$BATS_TEST_DIRNAME/../api_keys.json.sample" list
    assert_success
    run "$MK" --keys "$BATS_TEST_DIRNAME/../api_keys.json.sample" usage --state "$BATS_TEST_TMPDIR/none"
    assert_success
}

# ---- revoke ----------------------------------------------------------------

@test "revoke by id marks only that key revoked; again is a no-op with a note" {
    mk add --name a --env test >/dev/null 2>&1
    mk add --name b --env test >/dev/null 2>&1
    id=$(key_ids | head -n 1)
    other=$(key_ids | tail -n 1)
    run --separate-stderr mk revoke "$id"
    assert_success
    [ -z "$output" ]
    [[ $stderr == *"revoked $id"* ]]
    [[ $(field "$id" revoked_at) =~ ^\"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z\"$ ]]
    [ "$(field "$other" revoked_at)" = null ]
    run py 'import json, sys
l = {e["id"]: e for e in json.loads(sys.argv[1])}
assert l[sys.argv[2]]["revoked"] is True and l[sys.argv[3]]["revoked"] is False' \
        "$(mk list --json)" "$id" "$other"
    assert_success

    cp "$KEYS" "$BATS_TEST_TMPDIR/before"
    run --separate-stderr mk revoke "$id"
    assert_success
    [[ $stderr == *"already revoked"* ]]
    cmp "$KEYS" "$BATS_TEST_TMPDIR/before"
}

@test "revoke by the key itself" {
    KEY=$(mk add --name a --env test 2>/dev/null)
    mk add --name b --env test >/dev/null 2>&1
    run --separate-stderr mk revoke "$KEY"
    assert_success
    [[ $stderr != *"$KEY"* ]]
    [ "$(py 'import json, sys
d = json.load(open(sys.argv[1]))
print(sorted((e["name"], e["revoked_at"] is None) for e in d["keys"]))' "$KEYS")" \
        = "[('a', False), ('b', True)]" ]
}

@test "revoke of an unknown key or id fails with exit 1 and changes nothing" {
    KEY=$(mk add --name a --env test 2>/dev/null)
    cp "$KEYS" "$BATS_TEST_TMPDIR/before"
    for target in key_0123456789abcdef "${KEY}0" sk_test_nope; do
        run --separate-stderr mk revoke "$target"
        assert_failure 1
        [[ $stderr == *"manage-keys: no key"* ]]
        cmp "$KEYS" "$BATS_TEST_TMPDIR/before"
    done
}

# ---- limits and scopes -----------------------------------------------------

# The entry named $1 in the keys file, as JSON (all its fields).
entry_named() {
    py 'import json, sys
d = json.load(open(sys.argv[1]))
print(json.dumps([e for e in d["keys"] if e["name"] == sys.argv[2]][0], sort_keys=True))' "$KEYS" "$1"
}

# Check the entry named $1 with Python expression $2 over it (as e).
check_entry() {
    py 'import json, sys
d = json.load(open(sys.argv[1]))
e = [e for e in d["keys"] if e["name"] == sys.argv[2]][0]
assert eval(sys.argv[3]), e' "$KEYS" "$1" "$2"
}

@test "--help describes set, usage and the limits" {
    run --separate-stderr "$MK" --help
    assert_success
    assert_output --partial 'set KEY_OR_ID'
    run --separate-stderr "$MK" set --help
    assert_success
    for word in 'set KEY_OR_ID' '--rate N/UNIT' '--concurrency N' '--scope SCOPES' default; do
        assert_output --partial -- "$word"
    done
    run --separate-stderr "$MK" usage --help
    assert_success
    assert_output --partial 'usage [--json] [--state DIR]'
    assert_output --partial PYEXEC_STATE
}

@test "add --rate, --concurrency and --scope store a string, an integer and an ordered array" {
    mk add --name all --env test --rate 120/min --concurrency 8 --scope admin,execute >/dev/null 2>&1
    mk add --name admin --env prod --scope admin >/dev/null 2>&1
    mk add --name exec --env test --scope execute --rate=2/hour --concurrency=10000 >/dev/null 2>&1
    mk add --name both --env test --scope execute,admin --rate 1/s --concurrency 1 >/dev/null 2>&1
    mk add --name plain --env test >/dev/null 2>&1
    [ "$(key_count)" -eq 5 ]
    check_entry all 'e["rate"] == "120/min" and e["concurrency"] == 8 and type(e["concurrency"]) is int and e["scope"] == ["execute", "admin"]'
    check_entry admin 'e["scope"] == ["admin"] and "rate" not in e and "concurrency" not in e'
    check_entry exec 'e["scope"] == ["execute"] and e["rate"] == "2/hour" and e["concurrency"] == 10000'
    check_entry both 'e["scope"] == ["execute", "admin"] and e["rate"] == "1/s" and e["concurrency"] == 1'
    # Without the options nothing is stored: the defaults apply.
    check_entry plain 'not {"rate", "concurrency", "scope"} & set(e)'
    # The file is written as written before: the usual fields come first.
    check_entry all 'list(e)[:8] == ["id", "name", "description", "env", "created", "revoked_at", "prefix", "hash"]'
}

@test "add with a bad --rate, --concurrency or --scope exits 2 and changes nothing" {
    mk add --name seed --env test >/dev/null 2>&1
    cp "$KEYS" "$BATS_TEST_TMPDIR/before"
    bad=(
        --rate=0/min --rate=abc --rate=1000001/min --rate=5/week --rate=-5/min --rate=+5/min
        '--rate= 5/min' '--rate=5/min ' --rate=5 --rate=/min --rate= --rate=default
        --concurrency=0 --concurrency=10001 --concurrency=abc --concurrency=1.5
        --concurrency=-1 --concurrency=+3 '--concurrency= 3' --concurrency= --concurrency=default
        --scope=root --scope= --scope=admin, --scope=,admin --scope=admin,,execute
        --scope=ADMIN --scope=default '--scope=admin execute'
    )
    for opt in "${bad[@]}"; do
        run --separate-stderr mk add --name x --env test "$opt"
        [ "$status" -eq 2 ] || { echo "exit $status for $opt"; false; }
        [ -z "$output" ]
        [[ $stderr == "manage-keys: --"* ]]
        cmp "$KEYS" "$BATS_TEST_TMPDIR/before"
    done
    run --separate-stderr mk add --name x --env test --rate 0/min
    [[ $stderr == *'--rate must be'*'"0/min"'* ]]
    run --separate-stderr mk add --name x --env test --concurrency 0
    [[ $stderr == *'--concurrency must be an integer from 1 to 10000'* ]]
    run --separate-stderr mk add --name x --env test --scope root
    [[ $stderr == *'--scope must be'*'"root"'* ]]
    # No file is created for a refused add either.
    run "$MK" --keys "$BATS_TEST_TMPDIR/new.json" add --name x --env test --rate abc
    assert_failure 2
    [ ! -e "$BATS_TEST_TMPDIR/new.json" ]
}

@test "limit options belong to add and set; --state to usage; --json to add, list and usage" {
    for args in 'list --rate 1/s' 'revoke key_0000000000000001 --scope admin' \
        'usage --concurrency 3' 'list --state /tmp' 'add --name x --env test --state /tmp' \
        'set key_0000000000000001 --env test' 'set key_0000000000000001 --json --name x' \
        'set key_0000000000000001' 'set --name x' 'set a b --name x' 'usage extra' \
        'revoke --json key_0000000000000001'; do
        # shellcheck disable=SC2086
        run --separate-stderr mk $args
        [ "$status" -eq 2 ] || { echo "exit $status for $args"; false; }
        [[ $stderr == "manage-keys: "*"; see 'manage-keys "*" --help'" ]]
    done
    run --separate-stderr mk set key_0000000000000001
    [[ $stderr == *"set needs at least one of"* ]]
    run mk usage --state ''
    assert_failure 2
    [ ! -e "$KEYS" ]
}

# ---- set -------------------------------------------------------------------

@test "set changes a key's name, description, rate, concurrency and scope, and nothing else" {
    KEY=$(mk add --name a --description old --env test 2>/dev/null)
    mk add --name other --env prod --rate 7/min >/dev/null 2>&1
    id=$(field_by_name a id)
    before=$(entry_named a)
    other_before=$(entry_named other)
    run --separate-stderr mk set "$id" --rate 10/s --concurrency 3 --scope admin \
        --name renamed --description 'new text'
    assert_success
    [ -z "$output" ]
    [[ $stderr == *"manage-keys: changed $id (\"renamed\"): rate 10/s, concurrency 3, scope admin"* ]]
    check_entry renamed 'e["rate"] == "10/s" and e["concurrency"] == 3 and e["scope"] == ["admin"] and e["description"] == "new text"'
    # Everything else is as it was, in the same place.
    run py 'import json, sys
old, new = json.loads(sys.argv[1]), json.loads(sys.argv[2])
for k in ("id", "env", "created", "revoked_at", "prefix", "hash"):
    assert old[k] == new[k], k' "$before" "$(entry_named renamed)"
    assert_success
    check_entry renamed 'list(e)[:8] == ["id", "name", "description", "env", "created", "revoked_at", "prefix", "hash"]'
    [ "$(entry_named other)" = "$other_before" ]
    # The key still works as the same key: set by the key itself.
    run mk set "$KEY" --scope execute,admin
    assert_success
    check_entry renamed 'e["scope"] == ["execute", "admin"]'
    [ "$(stat -c %a "$KEYS")" = 600 ]
}

# The field $2 of the entry named $1, as plain text.
field_by_name() {
    py 'import json, sys
d = json.load(open(sys.argv[1]))
print([e for e in d["keys"] if e["name"] == sys.argv[2]][0][sys.argv[3]])' "$KEYS" "$1" "$2"
}

@test "set ... default removes the key's own rate, concurrency and scope" {
    mk add --name a --env test --rate 120/min --concurrency 8 --scope admin >/dev/null 2>&1
    id=$(field_by_name a id)
    run --separate-stderr mk set "$id" --rate default
    assert_success
    check_entry a '"rate" not in e and e["concurrency"] == 8 and e["scope"] == ["admin"]'
    run --separate-stderr mk set "$id" --concurrency default --scope default
    assert_success
    [[ $stderr == *"rate default, concurrency default, scope execute"* ]]
    check_entry a 'not {"rate", "concurrency", "scope"} & set(e)'
    # Dropping what is not there is fine too.
    run mk set "$id" --rate default
    assert_success
    run py 'import json, sys
l = json.loads(sys.argv[1])
assert l[0]["rate"] is None and l[0]["concurrency"] is None and l[0]["scope"] == ["execute"], l' \
        "$(mk list --json)"
    assert_success
}

@test "set on an unknown key or id exits 1, with a bad value 2, and changes nothing" {
    KEY=$(mk add --name a --env test --rate 5/min 2>/dev/null)
    id=$(field_by_name a id)
    cp "$KEYS" "$BATS_TEST_TMPDIR/before"
    for target in key_0123456789abcdef "${KEY}0" sk_test_nope; do
        run --separate-stderr mk set "$target" --rate 1/s
        assert_failure 1
        [ -z "$output" ]
        [[ $stderr == *"manage-keys: no key"* ]]
        cmp "$KEYS" "$BATS_TEST_TMPDIR/before"
    done
    for opt in --rate=0/min --rate=abc --concurrency=0 --concurrency=10001 --scope=root \
        --scope= --name= $'--name=two\nlines' $'--description=\x01'; do
        run --separate-stderr mk set "$id" "$opt"
        [ "$status" -eq 2 ] || { echo "exit $status for $opt"; false; }
        cmp "$KEYS" "$BATS_TEST_TMPDIR/before"
    done
    # A missing keys file has no keys to change, and is not created.
    run "$MK" --keys "$BATS_TEST_TMPDIR/none.json" set key_0123456789abcdef --rate 1/s
    assert_failure 1
    [ ! -e "$BATS_TEST_TMPDIR/none.json" ]
}

@test "set works on a revoked key and keeps it revoked" {
    mk add --name a --env test >/dev/null 2>&1
    id=$(field_by_name a id)
    mk revoke "$id" 2>/dev/null
    revoked=$(field "$id" revoked_at)
    run --separate-stderr mk set "$id" --concurrency 2
    assert_success
    [[ $stderr == *'("a", revoked)'* ]]
    [ "$(field "$id" revoked_at)" = "$revoked" ]
    [ "$(field "$id" concurrency)" = 2 ]
}

@test "set replaces a field in place, keeps unknown fields, and drops duplicates" {
    printf '{"version": 1, "keys": [%s]}\n' \
        "$(entry 1 ', "rate": "5/min", "x_note": "kept", "rate": "6/min"')" > "$KEYS"
    run mk set key_0000000000000001 --rate 9/h
    assert_success
    [ "$(grep -c '"rate"' "$KEYS")" -eq 1 ]
    [ "$(field key_0000000000000001 rate)" = '"9/h"' ]
    [ "$(field key_0000000000000001 x_note)" = '"kept"' ]
    run mk set key_0000000000000001 --rate default
    assert_success
    run grep -c '"rate"' "$KEYS"
    assert_output 0
}

# ---- list with limits ------------------------------------------------------

@test "list and list --json show rate, concurrency and scope" {
    mk add --name limited --env test --rate 120/minute --concurrency 8 --scope admin,execute >/dev/null 2>&1
    mk add --name admin --env prod --scope admin >/dev/null 2>&1
    mk add --name plain --env test >/dev/null 2>&1
    run --separate-stderr mk list
    assert_success
    assert_line --regexp ' limited +test +[0-9T:Z-]+ +no +sk_test_[0-9a-f]{4} +120/min +8 +execute,admin +$'
    assert_line --regexp ' admin +prod +[0-9T:Z-]+ +no +sk_prod_[0-9a-f]{4} +default +default +admin +$'
    assert_line --regexp ' plain +test +[0-9T:Z-]+ +no +sk_test_[0-9a-f]{4} +default +default +execute +$'
    run --separate-stderr mk list --json
    assert_success
    run py 'import json, sys
l = {e["name"]: e for e in json.loads(sys.argv[1])}
assert l["limited"]["rate"] == "120/min" and l["limited"]["concurrency"] == 8, l
assert type(l["limited"]["concurrency"]) is int
assert l["limited"]["scope"] == ["execute", "admin"], l
assert l["admin"]["rate"] is None and l["admin"]["concurrency"] is None, l
assert l["admin"]["scope"] == ["admin"], l
assert l["plain"]["rate"] is None and l["plain"]["scope"] == ["execute"], l' "$output"
    assert_success
}

# ---- usage -----------------------------------------------------------------

# Write a usage record as pyexec does (struct usage in src/state.h, little-
# endian): magic, version, window_start, window_count, then the counters
# requests successes user_errors timeouts memory_errors output_limits
# internal_errors rate_limited concurrency_limited cpu_ms wall_ms ($3...).
write_usage() {
    local dir=$1 id=$2
    shift 2
    mkdir -p "$dir/clients"
    py 'import struct, sys
vals = [int(v) for v in sys.argv[2:]]
assert len(vals) == 11
rec = struct.pack("<IIqQ11Q", 0x50594558, 1, 1700000000, 3, *vals)
assert len(rec) == 112
open(sys.argv[1], "wb").write(rec)' "$dir/clients/$id.usage" "$@"
}

@test "usage without a state directory shows zeros for every key, revoked ones marked" {
    mk add --name "first one" --env test >/dev/null 2>&1
    mk add --name gone --env prod >/dev/null 2>&1
    mk revoke "$(field_by_name gone id)" 2>/dev/null
    run --separate-stderr mk usage --state "$BATS_TEST_TMPDIR/no/such/dir"
    assert_success
    [ "${#lines[@]}" -eq 3 ]
    assert_line --index 0 --regexp '^ID +ENV +REVOKED +REQUESTS +SUCCESSES +USER_ERR +TIMEOUTS +MEM_ERR +OUTPUT_LIM +INTERNAL_ERR +REFUSED +GONE +RATE_LIM +CONC_LIM +CPU_S +WALL_S +NAME$'
    assert_line --regexp "key_[0-9a-f]{16} +test +no +0 +0 +0 +0 +0 +0 +0 +0 +0 +0 +0 +0\.000 +0\.000 +first one$"
    assert_line --regexp "key_[0-9a-f]{16} +prod +yes +0 +0 +0 +0 +0 +0 +0 +0 +0 +0 +0 +0\.000 +0\.000 +gone$"
    run --separate-stderr mk usage --json --state "$BATS_TEST_TMPDIR/no/such/dir"
    assert_success
    run py 'import json, sys
l = {e["name"]: e for e in json.loads(sys.argv[1])}
names = ["requests", "successes", "user_errors", "timeouts", "memory_errors", "output_limits",
         "internal_errors", "refused", "client_gone", "rate_limited", "concurrency_limited", "cpu_seconds", "wall_seconds"]
for e in l.values():
    assert sorted(e) == sorted(["id", "name", "env", "revoked"] + names), e
    assert all(e[n] == 0 for n in names), e
assert l["gone"]["revoked"] is True and l["first one"]["revoked"] is False, l
assert l["gone"]["env"] == "prod" and l["first one"]["env"] == "test", l' "$output"
    assert_success
    # An existing but empty state directory is the same.
    mkdir -p "$BATS_TEST_TMPDIR/state/clients"
    run mk usage --state "$BATS_TEST_TMPDIR/state"
    assert_success
    assert_output --partial ' 0.000 '
}

@test "usage --json reports the counters of the state files" {
    mk add --name busy --env test >/dev/null 2>&1
    mk add --name big --env prod >/dev/null 2>&1
    mk add --name idle --env test >/dev/null 2>&1
    STATE=$BATS_TEST_TMPDIR/state
    write_usage "$STATE" "$(field_by_name busy id)" 7 3 1 1 1 0 1 4 2 1234 5006
    write_usage "$STATE" "$(field_by_name big id)" 9007199254740993 0 0 0 0 0 0 0 0 5 61000
    run --separate-stderr mk usage --json --state "$STATE"
    assert_success
    printf '%s\n' "$output" > "$BATS_TEST_TMPDIR/usage.json"
    run py 'import json, sys
l = {e["name"]: e for e in json.load(open(sys.argv[1]))}
b = l["busy"]
assert (b["requests"], b["successes"], b["user_errors"], b["timeouts"], b["memory_errors"],
        b["output_limits"], b["internal_errors"], b["rate_limited"],
        b["concurrency_limited"]) == (7, 3, 1, 1, 1, 0, 1, 4, 2), b
assert b["cpu_seconds"] == 1.234 and b["wall_seconds"] == 5.006, b
# Counts are exact even past 2**53, seconds keep three decimals.
assert l["big"]["requests"] == 9007199254740993, l["big"]
assert l["big"]["cpu_seconds"] == 0.005 and l["big"]["wall_seconds"] == 61.0, l["big"]
assert all(v == 0 for k, v in l["idle"].items() if k not in ("id", "name", "env", "revoked"))' \
        "$BATS_TEST_TMPDIR/usage.json"
    assert_success
    grep -q '"wall_seconds":[[:space:]]*61.000' "$BATS_TEST_TMPDIR/usage.json"
    # The table shows the same; $PYEXEC_STATE is used without --state.
    PYEXEC_STATE=$STATE run --separate-stderr mk usage
    assert_success
    assert_line --regexp "key_[0-9a-f]{16} +test +no +7 +3 +1 +1 +1 +0 +1 +0 +0 +4 +2 +1\.234 +5\.006 +busy$"
    # ... and --state beats it.
    PYEXEC_STATE=$STATE run --separate-stderr mk usage --state "$BATS_TEST_TMPDIR/empty"
    assert_success
    refute_output --partial 1.234
    # Reading changes nothing.
    [ "$(stat -c %s "$STATE/clients/$(field_by_name busy id).usage")" -eq 112 ]
}

@test "usage: a foreign state file reads as zeros, an unusable state path fails" {
    mk add --name a --env test >/dev/null 2>&1
    STATE=$BATS_TEST_TMPDIR/state
    mkdir -p "$STATE/clients"
    printf 'not a usage record' > "$STATE/clients/$(field_by_name a id).usage"
    run --separate-stderr mk usage --json --state "$STATE"
    assert_success
    run py 'import json, sys
assert json.loads(sys.argv[1])[0]["requests"] == 0' "$output"
    assert_success
    touch "$BATS_TEST_TMPDIR/a-file"
    run --separate-stderr mk usage --state "$BATS_TEST_TMPDIR/a-file"
    assert_failure 1
    [ -z "$output" ]
    [[ $stderr == *"manage-keys: cannot read the usage of key_"* ]]
}

@test "usage of a missing keys file is an empty report; of a corrupt one fails" {
    run --separate-stderr mk usage --json --state "$BATS_TEST_TMPDIR/state"
    assert_success
    assert_output '[]'
    printf 'not json' > "$KEYS"
    run --separate-stderr mk usage --state "$BATS_TEST_TMPDIR/state"
    assert_failure 1
    [[ $stderr == *"is not a valid keys file"* ]]
}

# ---- corrupt files ---------------------------------------------------------

@test "a corrupt keys file is refused by every command and left byte-identical" {
    good=$(entry 1)
    bad_cases=(
        'not json at all'
        '{"version": 1, "keys": ['"$good"
        '{"version": 1, "keys": []} trailing'
        '{"version": 2, "keys": []}'
        '{"version": 1}'
        '{"version": 1, "keys": {}}'
        '{"version": 1, "keys": ['"$good"', 42]}'
        '{"version": 1, "keys": ['"$good"', '"$(entry 2 | sed 's/"env": "test"/"env": "dev"/')"']}'
        '{"version": 1, "keys": ['"$good"', '"$(entry 2 | sed 's/"hash": "sha256:/"hash": "md5:/')"']}'
        '{"version": 1, "keys": ['"$good"', '"$(entry 2 | sed 's/"name": "n2", //')"']}'
        '{"version": 1, "keys": ['"$good"', '"$(entry 2 | sed 's/"revoked_at": null/"revoked_at": 5/')"']}'
        '{"version": 1, "keys": ['"$good"', '"$(entry 2 | sed "s/$(sha256_of throwaway-2)/$(sha256_of throwaway-1)/")"']}'
        '{"version": 1, "keys": ['"$good"', '"$(entry 2 | sed "s/$(sha256_of throwaway-2)/$(sha256_of throwaway-2 | tr a-f A-F)/")"']}'
        '{"version": 1, "keys": ['"$good"', '"$(entry 2 | sed 's/key_0000000000000002/key_0000000000000001/')"']}'
    )
    for content in "${bad_cases[@]}"; do
        printf '%s\n' "$content" > "$KEYS"
        cp "$KEYS" "$BATS_TEST_TMPDIR/before"
        run --separate-stderr mk add --name x --env test
        assert_failure 1
        [ -z "$output" ]
        [[ $stderr == *"is not a valid keys file"* ]]
        [[ $stderr == *"left unchanged"* ]]
        run mk revoke key_0000000000000001
        assert_failure 1
        run mk list
        assert_failure 1
        run mk list --json
        assert_failure 1
        cmp "$KEYS" "$BATS_TEST_TMPDIR/before"
    done
}

@test "errors name the entry and field at fault" {
    printf '{"version": 1, "keys": [%s, %s]}' "$(entry 1)" \
        "$(entry 2 | sed 's/"env": "test"/"env": "dev"/')" > "$KEYS"
    run mk list
    assert_failure 1
    assert_output --partial 'keys[1]: "env" must be "test" or "prod"'
    printf '{"version": 1, "keys": [%s, %s]}' "$(entry 1)" \
        "$(entry 2 | sed 's/"prefix": "sk_test_0000",//')" > "$KEYS"
    run mk list
    assert_output --partial 'keys[1]: "prefix" is missing'
    printf '{"version": 1, "keys": [%s, %s]}' "$(entry 1)" \
        "$(entry 2 | sed 's/key_0000000000000002/key_0000000000000001/')" > "$KEYS"
    run mk list
    assert_output --partial 'keys[1]: "id" is the same as in keys[0]'
    printf '{"version": 1, "keys": [%s, %s, %s]}' "$(entry 1)" "$(entry 2)" \
        "$(entry 3 | sed "s/$(sha256_of throwaway-3)/$(sha256_of throwaway-1)/")" > "$KEYS"
    run mk list
    assert_output --partial 'keys[2]: "hash" is the same as in keys[0]'
}

# ---- concurrency and crashes -----------------------------------------------

@test "30 concurrent adds leave exactly 30 valid entries" {
    pids=()
    for i in $(seq 1 30); do
        "$MK" --keys "$KEYS" add --name "client $i" --env test \
            > "$BATS_TEST_TMPDIR/key.$i" 2>/dev/null &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do
        wait "$pid"
    done
    run mk list
    assert_success
    [ "$(key_count)" -eq 30 ]
    [ "$(key_ids | sort -u | wc -l)" -eq 30 ]
    # Every printed key is in the file, by its hash.
    for i in $(seq 1 30); do
        KEY=$(cat "$BATS_TEST_TMPDIR/key.$i")
        [[ $KEY =~ $KEY_RE ]]
        grep -q "\"sha256:$(sha256_of "$KEY")\"" "$KEYS"
    done
    run ls -A "$BATS_TEST_TMPDIR"
    refute_output --partial '.tmp.'
}

@test "kill -9 at random moments of add never breaks the file or loses an entry" {
    # Delays are spread over the time one add takes, so kills land anywhere
    # from start-up to after the rename.
    t0=${EPOCHREALTIME/./}
    mk add --name seed --env test >/dev/null 2>&1
    span=$(( ${EPOCHREALTIME/./} - t0 ))
    for i in $(seq 1 30); do
        before=$(key_ids)
        "$MK" --keys "$KEYS" add --name "victim $i" --env test >/dev/null 2>&1 &
        pid=$!
        delay=$(( RANDOM * span / 32768 ))
        sleep "$(printf '%d.%06d' $((delay / 1000000)) $((delay % 1000000)))"
        kill -9 "$pid" 2>/dev/null || true
        rc=0  # not $status, which run overwrites
        wait "$pid" 2>/dev/null || rc=$?
        [ "$rc" -eq 0 ] || [ "$rc" -eq 137 ]
        # Valid for Python and for pyexec's own reader ...
        run key_ids
        assert_success
        run mk list
        assert_success
        # ... holding every entry it held before, plus the new one if add
        # finished, or at most the new one if it was killed.
        run py 'import sys
before, after = set(sys.argv[1].split()), set(sys.argv[2].split())
finished = sys.argv[3] == "0"
assert before <= after, (before, after)
assert len(after - before) == 1 if finished else len(after - before) <= 1, (before, after)' \
            "$before" "$(key_ids)" "$rc"
        assert_success
    done
    # The next writer works and clears the temporary files the killed ones left.
    run mk add --name after --env test
    assert_success
    run ls -A "$BATS_TEST_TMPDIR"
    refute_output --partial '.tmp.'
}

# ---- export and import (keys on many hosts) --------------------------------

# The export's field $1, printed as text (strings bare, the rest as JSON).
export_field() {
    py 'import json, sys
v = json.load(open(sys.argv[1]))[sys.argv[2]]
print(v if isinstance(v, str) else json.dumps(v))' "$1" "$2"
}

@test "export: the keys file in an envelope with its SHA-256; --out writes it 0600" {
    mk add --name a --env test >/dev/null 2>&1
    mk add --name b --env prod --rate 40/min >/dev/null 2>&1
    run --separate-stderr mk export
    assert_success
    [[ $stderr == *"manage-keys: exported 2 keys from $KEYS, sha256 "* ]]
    printf '%s\n' "$output" > "$BATS_TEST_TMPDIR/out.json"
    run mk export --out "$BATS_TEST_TMPDIR/exp.json"
    assert_success
    [ "$(stat -c %a "$BATS_TEST_TMPDIR/exp.json")" = 600 ]
    E=$BATS_TEST_TMPDIR/exp.json
    [ "$(export_field "$E" format)" = pyexec-keys-export ]
    [ "$(export_field "$E" version)" = 1 ]
    [ "$(export_field "$E" keys)" = 2 ]
    [[ $(export_field "$E" exported_at) =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$ ]]
    # The content is the keys file, byte for byte, and the checksum is its SHA-256.
    py 'import json, sys; sys.stdout.write(json.load(open(sys.argv[1]))["content"])' "$E" \
        > "$BATS_TEST_TMPDIR/content"
    cmp "$BATS_TEST_TMPDIR/content" "$KEYS"
    [ "$(export_field "$E" sha256)" = "$(sha256sum < "$KEYS" | cut -d' ' -f1)" ]
    [ "$(export_field "$BATS_TEST_TMPDIR/out.json" sha256)" = "$(export_field "$E" sha256)" ]
}

@test "export of a missing or corrupt keys file fails and writes nothing" {
    run mk export --out "$BATS_TEST_TMPDIR/exp.json"
    assert_failure 1
    [ ! -e "$BATS_TEST_TMPDIR/exp.json" ]
    echo '{"version": 1, "keys": [' > "$KEYS"
    run mk export
    assert_failure 1
    assert_output --partial "is not a valid keys file"
}

@test "import: checks, then replaces the keys file with the same bytes; stdin with -" {
    mk add --name a --env test >/dev/null 2>&1
    mk add --name b --env prod --scope admin,execute >/dev/null 2>&1
    mk export --out "$BATS_TEST_TMPDIR/exp.json" 2>/dev/null
    run "$MK" --keys "$BATS_TEST_TMPDIR/host1.json" import "$BATS_TEST_TMPDIR/exp.json"
    assert_success
    assert_output --partial "imported 2 keys (sha256 $(export_field "$BATS_TEST_TMPDIR/exp.json" sha256))"
    assert_output --partial "2 new, 0 newly revoked"
    cmp "$KEYS" "$BATS_TEST_TMPDIR/host1.json"
    [ "$(stat -c %a "$BATS_TEST_TMPDIR/host1.json")" = 600 ]
    run "$MK" --keys "$BATS_TEST_TMPDIR/host2.json" import - < "$BATS_TEST_TMPDIR/exp.json"
    assert_success
    cmp "$KEYS" "$BATS_TEST_TMPDIR/host2.json"
    # Every host that imported it exports the same checksum.
    run --separate-stderr "$MK" --keys "$BATS_TEST_TMPDIR/host2.json" export
    [[ $stderr == *"sha256 $(export_field "$BATS_TEST_TMPDIR/exp.json" sha256)"* ]]
    # Importing it again changes nothing and succeeds.
    run "$MK" --keys "$BATS_TEST_TMPDIR/host1.json" import "$BATS_TEST_TMPDIR/exp.json"
    assert_success
    assert_output --partial "0 new, 0 newly revoked"
    cmp "$KEYS" "$BATS_TEST_TMPDIR/host1.json"
}

@test "import keeps the local file's mode, and a later revoke there works" {
    mk add --name a --env test >/dev/null 2>&1
    mk export --out "$BATS_TEST_TMPDIR/exp.json" 2>/dev/null
    H=$BATS_TEST_TMPDIR/host.json
    "$MK" --keys "$H" add --name old --env test >/dev/null 2>&1
    chmod 640 "$H"
    run "$MK" --keys "$H" import --force "$BATS_TEST_TMPDIR/exp.json"
    assert_success
    assert_output --partial "forced"
    [ "$(stat -c %a "$H")" = 640 ]
    id=$(key_ids)
    run "$MK" --keys "$H" revoke "$id"
    assert_success
}

@test "import refuses a damaged or altered export and leaves the keys file alone" {
    KEY=$(mk add --name a --env test --rate 40/min 2>/dev/null)
    mk export --out "$BATS_TEST_TMPDIR/exp.json" 2>/dev/null
    H=$BATS_TEST_TMPDIR/host.json
    "$MK" --keys "$H" import "$BATS_TEST_TMPDIR/exp.json" 2>/dev/null
    before=$(sha256sum < "$H")
    # A changed limit: the checksum no longer matches.
    sed 's|40/min|400/min|' "$BATS_TEST_TMPDIR/exp.json" > "$BATS_TEST_TMPDIR/altered.json"
    run "$MK" --keys "$H" import "$BATS_TEST_TMPDIR/altered.json"
    assert_failure 1
    assert_output --partial "checksum mismatch"
    assert_output --partial "nothing imported"
    # Truncated, not JSON, not an export, a future version.
    head -c 200 "$BATS_TEST_TMPDIR/exp.json" > "$BATS_TEST_TMPDIR/trunc.json"
    run "$MK" --keys "$H" import "$BATS_TEST_TMPDIR/trunc.json"
    assert_failure 1
    assert_output --partial "not an export of manage-keys"
    run "$MK" --keys "$H" import "$KEYS"
    assert_failure 1
    assert_output --partial "not an export of manage-keys"
    sed 's|"version":\t1,|"version":\t2,|' "$BATS_TEST_TMPDIR/exp.json" > "$BATS_TEST_TMPDIR/v2.json"
    run "$MK" --keys "$H" import "$BATS_TEST_TMPDIR/v2.json"
    assert_failure 1
    assert_output --partial "version 2"
    run "$MK" --keys "$H" import "$BATS_TEST_TMPDIR/missing.json"
    assert_failure 1
    [ "$(sha256sum < "$H")" = "$before" ]
    run ls -A "$BATS_TEST_TMPDIR"
    refute_output --partial '.tmp.'
}

@test "import refuses an export whose checksum is right but whose keys file is invalid" {
    mk add --name a --env test >/dev/null 2>&1
    before=$(sha256sum < "$KEYS")
    # A duplicate hash: valid JSON, not a valid keys file.
    py 'import json, hashlib, sys
c = "{\"version\": 1, \"keys\": [%s, %s]}\n" % (sys.argv[1], sys.argv[2])
print(json.dumps({"format": "pyexec-keys-export", "version": 1,
                  "sha256": hashlib.sha256(c.encode()).hexdigest(), "content": c}))' \
        "$(entry 1)" "$(entry 2 | sed "s/$(sha256_of throwaway-2)/$(sha256_of throwaway-1)/")" \
        > "$BATS_TEST_TMPDIR/invalid.json"
    run mk import "$BATS_TEST_TMPDIR/invalid.json"
    assert_failure 1
    assert_output --partial "holds no valid keys file"
    [ "$(sha256sum < "$KEYS")" = "$before" ]
}

@test "import refuses an older export (a key dropped or un-revoked) unless --force" {
    KEY1=$(mk add --name a --env test 2>/dev/null)
    mk export --out "$BATS_TEST_TMPDIR/old.json" 2>/dev/null
    mk revoke "$KEY1" 2>/dev/null
    mk add --name b --env test >/dev/null 2>&1
    mk export --out "$BATS_TEST_TMPDIR/new.json" 2>/dev/null
    H=$BATS_TEST_TMPDIR/host.json
    run "$MK" --keys "$H" import "$BATS_TEST_TMPDIR/new.json"
    assert_success
    assert_output --partial "2 new, 0 newly revoked"
    before=$(sha256sum < "$H")
    run "$MK" --keys "$H" import "$BATS_TEST_TMPDIR/old.json"
    assert_failure 1
    assert_output --partial "is revoked here but not in the export"
    assert_output --partial "is here but not in the export"
    assert_output --partial "refusing to import"
    [ "$(sha256sum < "$H")" = "$before" ]
    run "$MK" --keys "$H" import --force "$BATS_TEST_TMPDIR/old.json"
    assert_success
    cmp <(py 'import json, sys; sys.stdout.write(json.load(open(sys.argv[1]))["content"])' \
        "$BATS_TEST_TMPDIR/old.json") "$H"
    # A revocation arriving by import is counted as one.
    run "$MK" --keys "$H" import "$BATS_TEST_TMPDIR/new.json"
    assert_success
    assert_output --partial "1 new, 1 newly revoked"
}

@test "import of a hand-formatted keys file: the export holds it as manage-keys writes it" {
    printf '{"version":1,"keys":[%s]}' "$(entry 1 ', "rate": "10/min"')" > "$KEYS"
    mk export --out "$BATS_TEST_TMPDIR/exp.json" 2>/dev/null
    run "$MK" --keys "$BATS_TEST_TMPDIR/host.json" import "$BATS_TEST_TMPDIR/exp.json"
    assert_success
    [ "$(sha256sum < "$BATS_TEST_TMPDIR/host.json" | cut -d' ' -f1)" = \
      "$(export_field "$BATS_TEST_TMPDIR/exp.json" sha256)" ]
    KEYS=$BATS_TEST_TMPDIR/host.json
    [ "$(field key_0000000000000001 rate)" = '"10/min"' ]
}

@test "export, import and export-haproxy-limits: usage errors exit 2" {
    run mk import
    assert_failure 2
    run mk import a b
    assert_failure 2
    run mk export extra
    assert_failure 2
    run mk list --out x
    assert_failure 2
    run mk export --force
    assert_failure 2
    run mk import --out x y
    assert_failure 2
    run mk export --period 60
    assert_failure 2
    run mk export --out ''
    assert_failure 2
}

# ---- export-haproxy-limits -------------------------------------------------

@test "export-haproxy-limits: sha256(key) in hex and the limit per 60 s, revoked keys 0" {
    K1=$(mk add --name own --env test --rate 40/min 2>/dev/null)
    K2=$(mk add --name deftest --env test 2>/dev/null)
    K3=$(mk add --name defprod --env prod 2>/dev/null)
    K4=$(mk add --name gone --env prod --rate 5/s 2>/dev/null)
    mk revoke "$K4" 2>/dev/null
    run --separate-stderr mk export-haproxy-limits
    assert_success
    [[ $stderr == *"4 keys: 1 revoked (limit 0), 0 scaled to the period"* ]]
    printf '%s\n' "$output" | grep -v '^#' > "$BATS_TEST_TMPDIR/map"
    [ "$(wc -l < "$BATS_TEST_TMPDIR/map")" -eq 4 ]
    grep -qx "$(sha256_of "$K1") 40" "$BATS_TEST_TMPDIR/map"
    grep -qx "$(sha256_of "$K2") 60" "$BATS_TEST_TMPDIR/map"
    grep -qx "$(sha256_of "$K3") 600" "$BATS_TEST_TMPDIR/map"
    grep -qx "$(sha256_of "$K4") 0" "$BATS_TEST_TMPDIR/map"
    # The hash is the one the keys file stores.
    for id in $(key_ids); do
        h=$(field "$id" hash | tr -d '"')
        grep -q "^${h#sha256:} " "$BATS_TEST_TMPDIR/map"
    done
    # Comments say where it comes from.
    assert_line --index 0 --partial "from $KEYS (sha256 $(sha256sum < "$KEYS" | cut -d' ' -f1))"
}

@test "export-haproxy-limits: --test-rate/--prod-rate, --period scaling (warned), --out" {
    K1=$(mk add --name t --env test 2>/dev/null)
    K2=$(mk add --name p --env prod 2>/dev/null)
    K3=$(mk add --name hourly --env prod --rate 100/h 2>/dev/null)
    run --separate-stderr mk export-haproxy-limits --test-rate 30/min --prod-rate 10/s --out "$BATS_TEST_TMPDIR/lim.map"
    assert_success
    [ -z "$output" ]
    [[ $stderr == *'("p"): 10 per 1 s is 600 per 60 s for HAProxy (rounded up)'* ]]
    [[ $stderr == *'("hourly"): 100 per 3600 s is 2 per 60 s for HAProxy (rounded up)'* ]]
    [ "$(stat -c %a "$BATS_TEST_TMPDIR/lim.map")" = 644 ]
    grep -qx "$(sha256_of "$K1") 30" "$BATS_TEST_TMPDIR/lim.map"
    grep -qx "$(sha256_of "$K2") 600" "$BATS_TEST_TMPDIR/lim.map"
    grep -qx "$(sha256_of "$K3") 2" "$BATS_TEST_TMPDIR/lim.map"
    run mk export-haproxy-limits --period 3600
    assert_success
    assert_output --partial "$(sha256_of "$K3") 100"
    assert_output --partial "$(sha256_of "$K1") 3600"
    run mk export-haproxy-limits --period 0
    assert_failure 2
    run mk export-haproxy-limits --test-rate 5/week
    assert_failure 2
    run mk export-haproxy-limits --prod-rate -5/min
    assert_failure 2
}
