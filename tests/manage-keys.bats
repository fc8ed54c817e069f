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

@test "no command: usage on stderr, exit 2" {
    run --separate-stderr "$MK"
    assert_failure 2
    [ -z "$output" ]
    [[ $stderr == *"Usage: manage-keys"* ]]
}

@test "unknown command or option: usage on stderr, exit 2" {
    run --separate-stderr mk frobnicate
    assert_failure 2
    [ -z "$output" ]
    [[ $stderr == *'manage-keys: unknown command "frobnicate"'* ]]
    [[ $stderr == *"Usage:"* ]]

    run --separate-stderr mk list --verbose
    assert_failure 2
    [[ $stderr == *"manage-keys: unknown option --verbose"* ]]

    run mk add --name x --env test --json
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

@test "add without a good --name or --env fails with exit 1 and writes nothing" {
    run --separate-stderr mk add --env test
    assert_failure 1
    [ -z "$output" ]
    [[ $stderr == *"manage-keys: add needs --name"* ]]

    run mk add --name '' --env test
    assert_failure 1
    run --separate-stderr mk add --name x
    assert_failure 1
    [[ $stderr == *"--env"* ]]
    run --separate-stderr mk add --name x --env dev
    assert_failure 1
    [[ $stderr == *'--env must be test or prod, not "dev"'* ]]
    run mk add --name $'two\nlines' --env test
    assert_failure 1
    run mk add --name x --description $'\xff' --env test
    assert_failure 1
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
        "$(entry 1 ', "rate": {"per_minute": 60}, "scope": ["execute"]')" > "$KEYS"
    chmod 640 "$KEYS"
    mk add --name new --env test >/dev/null 2>&1
    [ "$(stat -c %a "$KEYS")" = 640 ]
    [ "$(key_count)" -eq 2 ]
    [ "$(py 'import json, sys; print(json.dumps(json.load(open(sys.argv[1]))["comment"]))' "$KEYS")" \
        = '{"kept": true}' ]
    [ "$(field key_0000000000000001 rate)" = '{"per_minute": 60}' ]
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
    assert_output --regexp '^ID +NAME +ENV +CREATED +REVOKED +PREFIX +DESCRIPTION$'
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
    assert_line --index 0 --regexp '^ID +NAME +ENV +CREATED +REVOKED +PREFIX +DESCRIPTION$'
    assert_output --regexp "key_[0-9a-f]{16} +First Client +test +[0-9T:Z-]+ +no +${KEY1:0:12} +the first"
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
                            "revoked_at", "prefix"]), e
assert e["name"] == "Test Client" and e["description"] == "For testing" and e["env"] == "test"
assert e["revoked"] is False and e["revoked_at"] is None
assert e["prefix"] == sys.argv[2][:12]' "$BATS_TEST_TMPDIR/list.json" "$KEY"
    assert_success
}

@test "the sample keys file is valid and holds one revoked example" {
    run "$MK" --keys "$BATS_TEST_DIRNAME/../api_keys.json.sample" list --json
    assert_success
    run py 'import json, sys
l = json.loads(sys.argv[1])
assert len(l) == 1 and l[0]["revoked"] is True, l' "$output"
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
