#!/usr/bin/python3
"""Helpers of scripts/test-cluster: a small HTTPS load generator and readers
of what HAProxy and the pyexec hosts count.  Standard library only.

  cluster.py load --url URL [--url URL2 ...] --cacert PEM --key KEY|random
                  [-n N] [-c C] [--rid PREFIX] [--log FILE] [--code CODE]
      Send N POST /execute requests, C at a time, each on a fresh TLS
      connection (request i goes to URL i mod the number of URLs), each with
      X-Request-Id PREFIX-i.  --key random: a fresh junk key per request.
      Prints one JSON summary: n, wall_s, rps, status counts, and one body per
      status.  --log FILE: one JSON line per request (i, rid, url, status,
      start, end, echoed X-Request-Id, RateLimit-*/Retry-After headers,
      body).

  cluster.py api SOCKET COMMAND...
      One command on HAProxy's runtime API (stats socket); prints the answer.

  cluster.py stat SOCKET
      `show stat` as JSON: {"proxy/server": {"status":..., "stot":...,
      "hrsp_2xx":..., ...}}.

  cluster.py metrics URL KEY
      GET URL/metrics with the admin key; prints JSON {metric: sum over
      clients} plus {"by_client": {client: {metric: value}}}.

  cluster.py lblog FILE
      HAProxy's log lines (this repository's log-format) as JSON lines:
      rid, backend, server, status, method, path.
"""
import argparse
import http.client
import json
import os
import re
import secrets
import socket
import ssl
import sys
import threading
import time
import urllib.parse

SEED = '{"code": "result = sum(data[\\"n\\"])", "data": {"n": [1, 2, 3]}}'


def one_request(url, ctx, key, rid, body, timeout=60):
    u = urllib.parse.urlsplit(url)
    conn_cls = http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection
    kw = {"context": ctx} if u.scheme == "https" else {}
    conn = conn_cls(u.hostname, u.port, timeout=timeout, **kw)
    headers = {"Content-Type": "application/json", "X-Request-Id": rid}
    if key is not None:
        headers["X-API-Key"] = key
    start = time.time()
    try:
        conn.request("POST", u.path or "/execute", body=body.encode(), headers=headers)
        resp = conn.getresponse()
        data = resp.read().decode("utf-8", "replace")
        out = {"status": resp.status, "echo_rid": resp.getheader("X-Request-Id"),
               "retry_after": resp.getheader("Retry-After"),
               "ratelimit_limit": resp.getheader("RateLimit-Limit"),
               "ratelimit_policy": resp.getheader("RateLimit-Policy"),
               "body": data[:300]}
    except (OSError, http.client.HTTPException) as e:
        out = {"status": 0, "error": f"{type(e).__name__}: {e}", "body": ""}
    finally:
        conn.close()
    out.update(start=start, end=time.time())
    return out


def cmd_load(a):
    ctx = ssl.create_default_context(cafile=a.cacert) if a.cacert else None
    body = a.code if a.code.lstrip().startswith("{") else json.dumps({"code": a.code})
    results = [None] * a.n
    nxt = [0]
    lock = threading.Lock()

    def worker():
        while True:
            with lock:
                i = nxt[0]
                nxt[0] += 1
            if i >= a.n:
                return
            key = ("sk_test_" + secrets.token_hex(24)) if a.key == "random" else a.key
            url = a.url[i % len(a.url)]
            rid = f"{a.rid}-{i:05d}"
            r = one_request(url, ctx, key, rid, body)
            r.update(i=i, rid=rid, url=url)
            results[i] = r

    t0 = time.time()
    threads = [threading.Thread(target=worker) for _ in range(max(1, a.c))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.time() - t0
    status, sample = {}, {}
    for r in results:
        s = str(r["status"])
        status[s] = status.get(s, 0) + 1
        sample.setdefault(s, r.get("error") or r["body"])
    if a.log:
        with open(a.log, "w") as f:
            for r in results:
                f.write(json.dumps(r) + "\n")
    print(json.dumps({"n": a.n, "wall_s": round(wall, 3), "rps": round(a.n / wall, 2),
                      "status": status, "sample": sample}))


def runtime_api(sock_path, command):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(sock_path)
    s.sendall(command.encode() + b"\n")
    chunks = []
    while True:
        b = s.recv(65536)
        if not b:
            break
        chunks.append(b)
    s.close()
    return b"".join(chunks).decode("utf-8", "replace")


def cmd_api(a):
    sys.stdout.write(runtime_api(a.socket, " ".join(a.command)))


def cmd_stat(a):
    text = runtime_api(a.socket, "show stat")
    lines = [l for l in text.splitlines() if l.strip()]
    head = lines[0].lstrip("# ").split(",")
    out = {}
    for l in lines[1:]:
        row = dict(zip(head, l.split(",")))
        out[f"{row['pxname']}/{row['svname']}"] = row
    print(json.dumps(out))


METRIC_RE = re.compile(r'^(pyexec_[a-z_]+)\{client="([^"]+)"[^}]*\}\s+([0-9.]+)$')


def cmd_metrics(a):
    req = urllib.parse.urlsplit(a.url)
    conn = http.client.HTTPConnection(req.hostname, req.port, timeout=10)
    conn.request("GET", "/metrics", headers={"X-API-Key": a.key})
    resp = conn.getresponse()
    text = resp.read().decode()
    if resp.status != 200:
        print(json.dumps({"error": resp.status, "body": text[:300]}))
        sys.exit(1)
    total, by_client = {}, {}
    for line in text.splitlines():
        m = METRIC_RE.match(line)
        if not m:
            continue
        name, client, value = m.group(1), m.group(2), float(m.group(3))
        total[name] = total.get(name, 0) + value
        by_client.setdefault(client, {})[name] = value
    total["by_client"] = by_client
    print(json.dumps(total))


# ... pyexec~ pyexec_hosts/h1 0/0/1/45/46 200 319 ---- ... rid=X key=... limit=... "POST /execute HTTP/1.1"
LOG_RE = re.compile(r' (\S+)/(\S+) (-?\d+)/(-?\d+)/(-?\d+)/(-?\d+)/(-?\d+) (-?\d+) \S+ (\S+) '
                    r'\d+/\d+/\d+/\d+/\+?(\d+) .* rid=(\S*) key=(\S*) limit=(\S*) "(\S+) (\S+)')


def cmd_lblog(a):
    with open(a.file, errors="replace") as f:
        for line in f:
            m = LOG_RE.search(line)
            if not m:
                continue
            print(json.dumps({"backend": m.group(1), "server": m.group(2), "status": int(m.group(8)),
                              "termination": m.group(9), "retries": int(m.group(10)),
                              "rid": m.group(11), "key": m.group(12), "method": m.group(14),
                              "path": m.group(15)}))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    l = sub.add_parser("load")
    l.add_argument("--url", action="append", required=True)
    l.add_argument("--cacert")
    l.add_argument("--key", required=True)
    l.add_argument("-n", type=int, default=10)
    l.add_argument("-c", type=int, default=1)
    l.add_argument("--rid", default="req")
    l.add_argument("--log")
    l.add_argument("--code", default=SEED)
    l.set_defaults(fn=cmd_load)
    s = sub.add_parser("api")
    s.add_argument("socket")
    s.add_argument("command", nargs="+")
    s.set_defaults(fn=cmd_api)
    s = sub.add_parser("stat")
    s.add_argument("socket")
    s.set_defaults(fn=cmd_stat)
    m = sub.add_parser("metrics")
    m.add_argument("url")
    m.add_argument("key")
    m.set_defaults(fn=cmd_metrics)
    g = sub.add_parser("lblog")
    g.add_argument("file")
    g.set_defaults(fn=cmd_lblog)
    a = p.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
