"""A client that leaves early: POST /execute to 127.0.0.1:PORT, then go.

hangup.py PORT KEY CODE write  -- read the first bytes of the answer, then
    reset the connection (SO_LINGER {1, 0}) while the server still writes it
    (a small receive buffer keeps the server blocked in its write).
hangup.py PORT KEY CODE exec   -- close the connection 0.3 s after sending,
    while the code still runs.
"""
import json
import socket
import struct
import sys
import time

port, key, code, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
body = json.dumps({"code": code}).encode()
head = ("POST /execute HTTP/1.1\r\nHost: x\r\nX-API-Key: %s\r\n"
        "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (key, len(body)))
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", port))
s.sendall(head.encode() + body)
if mode == "write":
    s.settimeout(30)
    first = s.recv(64)
    sys.stdout.write(first.decode("latin-1").split("\r\n")[0] + "\n")
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
else:
    time.sleep(0.3)
s.close()
