#!/usr/bin/env bats
# A real Prometheus scrapes /metrics with an admin key sent as a Bearer token.

setup_file() { load helpers; start_server; }
teardown_file() {
    load helpers
    if [ -f "$BATS_FILE_TMPDIR/prom.pid" ]; then
        kill "$(cat "$BATS_FILE_TMPDIR/prom.pid")" 2>/dev/null || true
    fi
    stop_server
}
setup() { load helpers; }

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

@test "prometheus scrapes /metrics with authorization Bearer and sees up == 1" {
    command -v prometheus || skip "prometheus is not installed (scripts/setup installs it)"
    admin=$("$MANAGE_KEYS" add --name "prometheus" --env test --scope admin 2>/dev/null)
    cat > "$BATS_FILE_TMPDIR/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: pyexec
    metrics_path: /metrics
    authorization:
      type: Bearer
      credentials: $admin
    static_configs:
      - targets: ["127.0.0.1:$PORT"]
YML
    prom_port=$(free_port)
    prometheus --config.file="$BATS_FILE_TMPDIR/prometheus.yml" \
        --storage.tsdb.path="$BATS_FILE_TMPDIR/tsdb" \
        --web.listen-address="127.0.0.1:$prom_port" >"$BATS_FILE_TMPDIR/prom.log" 2>&1 3>&- &
    echo $! > "$BATS_FILE_TMPDIR/prom.pid"
    local health="" i
    for i in $(seq 1 60); do
        health=$(curl -s "http://127.0.0.1:$prom_port/api/v1/targets" | /usr/bin/python3 -c '
import json, sys
t = [a for a in json.load(sys.stdin)["data"]["activeTargets"] if a["labels"]["job"] == "pyexec"]
print(t[0]["health"] if t else "none", t[0].get("lastError", "") if t else "")' 2>/dev/null) || true
        [[ "$health" == up* ]] && break
        sleep 0.5
    done
    [[ "$health" == up* ]] || { echo "target health: $health"; tail -5 "$BATS_FILE_TMPDIR/prom.log"; false; }
    run curl -s "http://127.0.0.1:$prom_port/api/v1/query?query=up%7Bjob%3D%22pyexec%22%7D"
    echo "$output"
    value=$(echo "$output" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["result"][0]["value"][1])')
    assert_equal "$value" 1
    grep -q 'method=GET path=/metrics status=200' "$SRV_LOG"
}
