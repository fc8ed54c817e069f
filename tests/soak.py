"""Soak: N requests at concurrency C over real sockets, mixing good, bad-key,
erroring and timing-out snippets; every answer must be complete, well-formed
JSON of the expected shape.  Prints a summary; exits 1 on any failure.

usage: soak.py PORT KEY N CONCURRENCY
"""
import http.client
import json
import sys
from concurrent.futures import ThreadPoolExecutor

port, key, total, conc = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

CASES = [
    # (weight, key, body, status, check)
    (70, key, {"code": "result = sum(data['n']) * 2", "data": {"n": [1, 2, 3]}}, 200,
     lambda j: j["success"] is True and j["result"] == 12),
    (10, "sk_test_" + "0" * 48, {"code": "result = 1"}, 401,
     lambda j: j["error"]["type"] == "Unauthorized"),
    (12, key, {"code": "x = 1\ny = x / 0"}, 200,
     lambda j: j["success"] is False and j["error"]["type"] == "ZeroDivisionError"
     and j["error"]["line"] == 2),
    (5, key, {"code": "while True: pass", "limits": {"timeout_ms": 300}}, 200,
     lambda j: j["error"]["type"] == "TimeoutError"),
    (3, key, {"code": "print('x' * 100)\nresult = printed"}, 200,
     lambda j: j["result"] == "x" * 100 + "\n" and j["output"] == "x" * 100 + "\n"),
]
PLAN = [c for c in CASES for _ in range(c[0])]


def one(i):
    weight, k, body, want, check = PLAN[i % len(PLAN)]
    payload = json.dumps(body)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("POST", "/execute", payload,
                     {"X-API-Key": k, "Content-Type": "application/json"})
        resp = conn.getresponse()
        raw = resp.read()
        conn.close()
        j = json.loads(raw)
        if resp.status != want:
            return "status %d (wanted %d): %r" % (resp.status, want, raw[:200])
        if resp.getheader("Connection") != "close" or not resp.getheader("X-Request-Id"):
            return "missing headers"
        if not check(j):
            return "bad answer: %r" % raw[:300]
        if want == 200 and sorted(j["stats"]) != ["cpu_ms", "max_rss_kib", "wall_ms"]:
            return "no stats: %r" % raw[:300]
        return None
    except Exception as e:  # a failed connection is a failure like any other
        return "connection failed: %r" % e


with ThreadPoolExecutor(max_workers=conc) as pool:
    failures = [f for f in pool.map(one, range(total)) if f]

print("soak: %d requests at concurrency %d: %d failures" % (total, conc, len(failures)))
for f in failures[:10]:
    print("  " + f)
sys.exit(1 if failures else 0)
