# Bare floor of scripts/bench: one HTTP request on stdin, one fixed answer on
# stdout, by a bare interpreter start.  floor_dep.py is this file plus the
# import of RestrictedPython; keep the two identical otherwise.
import sys
inp, out = sys.stdin.buffer, sys.stdout.buffer
length = 0
while True:
    line = inp.readline()
    if line in (b"\r\n", b"\n", b""):
        break
    name, _, value = line.partition(b":")
    if name.strip().lower() == b"content-length":
        length = int(value)
inp.read(length)
body = b'{"success": true, "result": 3.0}'
out.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
          b"Connection: close\r\n\r\n%s" % (len(body), body))
out.flush()
