# Shared by the bats files: start the real pyexec under systemd-socket-activate
# on a free loopback port, with its own keys file, config and logs.
load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

ROOT="$(cd "$BATS_TEST_DIRNAME/.." && pwd)"
PYEXEC_BIN="${PYEXEC_BIN:-$ROOT/build/pyexec}"
MANAGE_KEYS="${MANAGE_KEYS:-$ROOT/build/manage-keys}"

# Rate and concurrency limits out of the way, except where a test sets them.
GENEROUS=$'[global]\nmax_concurrent = 64\n[test]\nrate_limit = 100000\nconcurrency = 32\n[prod]\nrate_limit = 100000\nconcurrency = 32'

# start_server [config text]: sets PORT, URL, KEY (test env), PROD_KEY, SRV_LOG.
# The config text is appended to GENEROUS (later settings win).
start_server() {
    local dir="$BATS_FILE_TMPDIR"
    export PYEXEC_KEYS="$dir/api_keys.json" PYEXEC_CONFIG="$dir/pyexec.conf"
    export PYEXEC_STATE="$dir/state"
    mkdir -p "$PYEXEC_STATE"
    SERVER_CONF_TEXT="${1:-}"
    write_server_config
    KEY=$("$MANAGE_KEYS" add --name "bats test" --env test 2>/dev/null)
    PROD_KEY=$("$MANAGE_KEYS" add --name "bats prod" --env prod 2>/dev/null)
    SRV_LOG="$dir/server.log"
    local try
    for try in 1 2 3 4 5 6 7 8 9 10; do
        PORT=$(( 20000 + (RANDOM * 7 + $$ + try * 977) % 40000 ))
        local wrap=()
        if [ -n "${VALGRIND_WRAP:-}" ]; then
            wrap=(valgrind --leak-check=full --show-leak-kinds=definite,indirect
                  --errors-for-leak-kinds=definite,indirect --child-silent-after-fork=yes
                  "--log-file=$VG_DIR/vg.%p.log")
        elif [ -n "${SERVER_WRAP:-}" ]; then
            read -ra wrap <<< "$SERVER_WRAP"   # e.g. tests/deny-syscall.c's launcher
        fi
        systemd-socket-activate --inetd -a -l "127.0.0.1:$PORT" \
            -E PYEXEC_KEYS -E PYEXEC_CONFIG -E PYEXEC_STATE -E ASAN_OPTIONS -E UBSAN_OPTIONS \
            "${wrap[@]}" "$PYEXEC_BIN" >"$SRV_LOG" 2>&1 3>&- &
        SRV_PID=$!
        local i
        for i in $(seq 1 50); do
            if curl -s -o /dev/null "http://127.0.0.1:$PORT/health"; then
                URL="http://127.0.0.1:$PORT"
                export PORT URL KEY PROD_KEY SRV_LOG SRV_PID
                echo "$SRV_PID" > "$dir/server.pid"
                allow_host_missing_layers
                # Later tests of the file see a server (re)started by a test.
                declare -p PORT URL KEY PROD_KEY SRV_LOG SRV_PID PYEXEC_KEYS \
                    PYEXEC_CONFIG PYEXEC_STATE | sed 's/^declare -x /declare -gx /' > "$dir/server.env"
                return 0
            fi
            kill -0 "$SRV_PID" 2>/dev/null || break
            sleep 0.05
        done
        kill "$SRV_PID" 2>/dev/null || true
        wait "$SRV_PID" 2>/dev/null || true
    done
    echo "could not start pyexec" >&2
    return 1
}

# The test config: GENEROUS, the test's own text, then the layers this host
# cannot apply (see allow_host_missing_layers), unless the test is about them.
write_server_config() {
    local allow=""
    [ -n "${SERVER_WRAP:-}" ] || [[ $SERVER_CONF_TEXT == *allow_missing_layers* ]] ||
        allow=$(cat "$BATS_RUN_TMPDIR/host-missing-layers" 2>/dev/null || true)
    printf '%s\n%s\n' "$GENEROUS" "$SERVER_CONF_TEXT" > "$PYEXEC_CONFIG"
    [ -z "$allow" ] || printf '[global]\nallow_missing_layers = %s\n' "$allow" >> "$PYEXEC_CONFIG"
}

# On a host that cannot apply a layer (systemd-nspawn refuses Landlock), pyexec
# fails closed; the suites that are not about layers then run with the
# opt-out naming exactly what /health reports missing (found once per run,
# and said once: "host cannot apply: landlock").  tests/layers.bats and
# tests/probe.bats test the refusal itself.
allow_host_missing_layers() {
    local cache="$BATS_RUN_TMPDIR/host-missing-layers" body i found=""
    [ ! -e "$cache" ] || return 0
    [ -z "${SERVER_WRAP:-}" ] && [[ $SERVER_CONF_TEXT != *allow_missing_layers* ]] || return 0
    for i in $(seq 12); do
        body=$(curl -s "$URL/health")
        [[ $body =~ sandbox\ layer\ unavailable:\ ([a-z_]+) ]] || break
        found="$found ${BASH_REMATCH[1]}"
        echo "$found" > "$cache"
        write_server_config   # read again by the next connection's process
    done
    echo "$found" > "$cache"
    [ -z "$found" ] || echo "# host cannot apply:$found (tests run with allow_missing_layers)" >&3
}

stop_server() {
    local pid
    pid=$(cat "$BATS_FILE_TMPDIR/server.pid" 2>/dev/null) || return 0
    kill "$pid" 2>/dev/null || true
    # No sanitizer report may appear in the server log.
    if grep -E "ERROR: AddressSanitizer|runtime error:|LeakSanitizer" "$BATS_FILE_TMPDIR/server.log"; then
        echo "sanitizer report in server log" >&2
        return 1
    fi
}

# post_execute JSON [key]: POST /execute; sets STATUS and BODY.
post_execute() {
    local key="${2-$KEY}"
    local out
    out=$(curl -s -m 30 -w '\n%{http_code}' -X POST "$URL/execute" \
        -H "X-API-Key: $key" -H 'Content-Type: application/json' --data-binary "$1")
    STATUS="${out##*$'\n'}"
    BODY="${out%$'\n'*}"
    BODY="${BODY%$'\n'}"   # the trailing newline after the JSON
}

# json_get BODY EXPR: evaluate a Python expression over the parsed JSON `j`.
json_get() {
    /usr/bin/python3 -c 'import json,sys; j=json.loads(sys.argv[1]); v=eval(sys.argv[2]); print(json.dumps(v) if not isinstance(v,str) else v)' "$1" "$2"
}

# The server still answers a normal request afterwards.
assert_server_healthy() {
    post_execute '{"code": "result = 6 * 7"}'
    [ "$STATUS" = 200 ] || { echo "next request got $STATUS: $BODY"; return 1; }
    [ "$(json_get "$BODY" 'j["result"]')" = 42 ]
}

# raw_request TEXT [--no-shutdown]: send bytes as they are (printf escapes)
# over a plain socket and print the whole reply.
raw_request() {
    printf "$1" | timeout 30 /usr/bin/python3 "$BATS_TEST_DIRNAME/rawhttp.py" "$PORT" "${@:2}"
}

# Loaded by every test's setup(): pick up the current server.
if [ -n "${BATS_FILE_TMPDIR:-}" ] && [ -f "$BATS_FILE_TMPDIR/server.env" ]; then
    # shellcheck disable=SC1091
    source "$BATS_FILE_TMPDIR/server.env"
    export PORT URL KEY PROD_KEY SRV_LOG SRV_PID PYEXEC_KEYS PYEXEC_CONFIG PYEXEC_STATE
fi
