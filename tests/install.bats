#!/usr/bin/env bats
# What a new user hits first: a checkout or prefix the worker's user cannot
# traverse, `make run` on a busy port, and `make install` for each PREFIX.

setup() { load helpers; }
teardown() { load helpers; stop_server; [ -z "${HOLDER:-}" ] || kill "$HOLDER" 2>/dev/null || true; }

# private_dir: a fresh directory whose parent is root's and mode 0700, as
# /root is on Debian: nobody (the worker's user) cannot traverse it.
private_dir() {
    local parent
    parent=$(mktemp -d "$BATS_TEST_TMPDIR/private.XXXXXX")
    chmod 700 "$parent"
    mkdir -p "$parent/$1"
    echo "$parent/$1"
}

# serves_seed DIR_OF_PYEXEC: a server started from that copy answers the seed example.
serves_seed() {
    PYEXEC_BIN="$1/pyexec" start_server
    post_execute '{"code": "result = data[\"x\"] + data[\"y\"]", "data": {"x": 1, "y": 2}}'
    echo "$STATUS $BODY"
    assert_equal "$STATUS" 200
    assert_equal "$(json_get "$BODY" 'j["result"]')" 3
}

@test "a checkout under a 0700 directory (worker next to pyexec) serves" {
    [ "$(id -u)" = 0 ] || skip "the worker drops privileges only when started as root"
    local build
    build=$(private_dir pyexec/build)
    cp "$PYEXEC_BIN" "$(dirname "$PYEXEC_BIN")/pyexec-worker" "$build/"
    ! /usr/sbin/runuser -u nobody -- test -x "$build/pyexec-worker"   # truly out of reach
    serves_seed "$build"
}

@test "a prefix under a 0700 directory (worker in ../lib/pyexec) serves" {
    [ "$(id -u)" = 0 ] || skip "the worker drops privileges only when started as root"
    local prefix
    prefix=$(private_dir prefix)
    install -d "$prefix/bin" "$prefix/lib/pyexec"
    install -m 755 "$PYEXEC_BIN" "$prefix/bin/pyexec"
    install -m 755 "$(dirname "$PYEXEC_BIN")/pyexec-worker" "$prefix/lib/pyexec/pyexec-worker"
    serves_seed "$prefix/bin"
}

# free_port: a loopback port nothing listens on (at the time of asking).
free_port() {
    /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# run_env: scripts/run's files in this test's directory, not build/run.
run_env() {
    export PYEXEC_KEYS="$BATS_TEST_TMPDIR/run/api_keys.json"
    export PYEXEC_CONFIG="$BATS_TEST_TMPDIR/run/pyexec.conf"
    export PYEXEC_STATE="$BATS_TEST_TMPDIR/run/state"
    mkdir -p "$BATS_TEST_TMPDIR/run"
}

@test "make run on a busy port: one clear line, non-zero exit, no key shown or made" {
    run_env
    /usr/bin/python3 -c 'import socket, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
print(s.getsockname()[1], flush=True); time.sleep(60)' > "$BATS_TEST_TMPDIR/port" 3>&- &
    HOLDER=$!
    local i port=""
    for i in $(seq 1 50); do port=$(cat "$BATS_TEST_TMPDIR/port"); [ -n "$port" ] && break; sleep 0.05; done
    PYEXEC_LISTEN="127.0.0.1:$port" run timeout 10 "$ROOT/scripts/run"
    echo "$output"
    [ "$status" -ne 0 ] && [ "$status" -ne 124 ]
    assert_equal "${#lines[@]}" 1
    assert_output --regexp "127\.0\.0\.1:$port.*in use"
    refute_output --partial sk_test_
    refute_output --partial "demo key"
    [ ! -e "$PYEXEC_KEYS" ]
}

@test "make run on a free port: the banner's key and curl command work" {
    run_env
    local port out="$BATS_TEST_TMPDIR/run.out" i key=""
    port=$(free_port)
    PYEXEC_LISTEN="127.0.0.1:$port" "$ROOT/scripts/run" > "$out" 2>&1 3>&- &
    HOLDER=$!
    for i in $(seq 1 100); do
        key=$(sed -n 's/^  demo key:  //p' "$out")
        [ -n "$key" ] && break
        sleep 0.05
    done
    cat "$out"
    [[ $key == sk_test_* ]]
    # The banner comes once it is listening: no wait needed.
    URL="http://127.0.0.1:$port"
    post_execute '{"code": "result = data[\"x\"] + data[\"y\"]", "data": {"x": 1, "y": 2}}' "$key"
    assert_equal "$STATUS" 200
    assert_equal "$(json_get "$BODY" 'j["result"]')" 3
    # The demo key is kept next to the keys file it was added to.
    assert_equal "$(cat "$BATS_TEST_TMPDIR/run/demo-key")" "$key"
}

# install_to PREFIX: make install into a fresh DESTDIR; sets DEST.
install_to() {
    DEST=$(mktemp -d "$BATS_TEST_TMPDIR/dest.XXXXXX")
    run make -s -C "$ROOT" install DESTDIR="$DEST" PREFIX="$1"
    assert_success
}

# verify_units DIR: systemd-analyze verify on the installed units, with
# DESTDIR as the root (ExecStart's binary is looked for there) and the
# host's targets and slices copied in for their dependencies.
verify_units() {
    mkdir -p "$DEST/usr/lib/systemd/system"
    cp -n /usr/lib/systemd/system/*.target /usr/lib/systemd/system/*.slice \
        "$DEST/usr/lib/systemd/system/"
    run systemd-analyze verify --root="$DEST" --man=no "$1/pyexec.socket" "$1/pyexec@.service"
    echo "$output"
    assert_success
    assert_output ""
}

# units_point_into DIR PREFIX: every path in the units lies below PREFIX or /etc.
units_point_into() {
    local u
    for u in "$1/pyexec.socket" "$1/pyexec@.service"; do
        [ -f "$u" ]
        ! grep -n '@[A-Z]*@' "$u"
        grep -q "^Documentation=file://$2/share/doc/pyexec/README.md$" "$u"
    done
    grep -q "^ExecStart=$2/bin/pyexec$" "$1/pyexec@.service"
    [ -x "$DEST$2/bin/pyexec" ] && [ -x "$DEST$2/lib/pyexec/pyexec-worker" ]
    [ -f "$DEST$2/share/doc/pyexec/README.md" ]
}

@test "make install PREFIX=/usr: units in /usr/lib/systemd/system, no /usr/local in them" {
    install_to /usr
    units_point_into "$DEST/usr/lib/systemd/system" /usr
    [ ! -e "$DEST/etc/systemd" ]
    [ ! -e "$DEST/usr/local" ]
    ! grep -rn /usr/local "$DEST/usr/lib/systemd/system"
    [ -f "$DEST/etc/pyexec/pyexec.conf" ]
    verify_units /usr/lib/systemd/system
}

@test "make install PREFIX=/usr/local: units in /etc/systemd/system, all paths in /usr/local" {
    install_to /usr/local
    units_point_into "$DEST/etc/systemd/system" /usr/local
    [ ! -e "$DEST/usr/lib/systemd" ]
    ! grep -rnE '/usr/(bin|lib|share)' "$DEST/etc/systemd/system"
    verify_units /etc/systemd/system
}

@test "the shipped socket listens on loopback only" {
    run grep '^ListenStream=' "$ROOT/units/pyexec.socket"
    assert_output $'ListenStream=127.0.0.1:8000\nListenStream=[::1]:8000'
}
