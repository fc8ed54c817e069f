#!/usr/bin/python3
"""Connection cap of pyexec.socket, seen from a client inside the container.

Holds two connections open with half-sent request heads (so both instances
sit in their read of the head), opens a third while they are held, records
what the socket unit reports, then releases them one by one.  Prints one
JSON object; scripts/test-systemd judges it.

usage: slowconn.py PORT
"""
import json
import socket
import subprocess
import sys
import time

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
HEAD = b"GET /health HTTP/1.1\r\nHost: test\r\n"   # the final empty line is held back


def connect():
    s = socket.create_connection(("127.0.0.1", PORT), timeout=5)
    s.sendall(HEAD)
    return s


def wait_for(s, seconds):
    """What the server does with s within seconds: 'waiting', 'closed' or 'data:...'."""
    s.settimeout(seconds)
    try:
        b = s.recv(4096)
    except socket.timeout:
        return "waiting"
    except OSError as e:          # reset
        return "closed:" + e.__class__.__name__
    return "closed" if not b else "data:" + b.decode("latin-1").split("\r\n", 1)[0]


def finish(s):
    """Send the end of the head, return the status line (or what went wrong)."""
    try:
        s.settimeout(5)
        s.sendall(b"\r\n")
        buf = b""
        while True:
            b = s.recv(4096)
            if not b:
                break
            buf += b
        s.close()
        return buf.decode("latin-1").split("\r\n", 1)[0] or "closed"
    except OSError as e:
        return "error:" + e.__class__.__name__


def socket_counts():
    out = subprocess.run(["systemctl", "show", "pyexec.socket", "-p", "NConnections",
                          "-p", "NAccepted", "-p", "NRefused"],
                         capture_output=True, text=True).stdout
    return dict(line.split("=", 1) for line in out.split())


def status_line():
    out = subprocess.run(["systemctl", "status", "--no-pager", "pyexec.socket"],
                         capture_output=True, text=True).stdout
    return next((l.strip() for l in out.splitlines() if "Accepted:" in l), "")


r = {}
c1 = connect()
c2 = connect()
time.sleep(0.5)                       # both accepted, both instances started
r["held"] = socket_counts()
r["status_held"] = status_line()
c3 = connect()
r["third"] = wait_for(c3, 1.5)        # while c1 and c2 are held
r["held_after_third"] = socket_counts()
r["first"] = finish(c1)               # release one slot
time.sleep(0.3)
if r["third"] == "waiting":           # backlog semantics: it should now be served
    r["third_after_release"] = finish(c3)
else:
    c3.close()
c4 = socket.create_connection(("127.0.0.1", PORT), timeout=5)
c4.sendall(HEAD)
r["fourth"] = finish(c4)              # a new connection is served again
r["second"] = finish(c2)
time.sleep(0.3)
r["after"] = socket_counts()
r["status_after"] = status_line()
print(json.dumps(r))
