"""Expect: 100-continue client: send the head, wait up to 5 s for the 100,
then (only if it came) the body; print everything the server sent.

usage: expect.py PORT KEY BODY   (BODY "--size=N": N bytes of "a")
"""
import socket
import sys

port, key, body = int(sys.argv[1]), sys.argv[2], sys.argv[3].encode()
if body.startswith(b"--size="):
    body = b"a" * int(body[7:])
s = socket.create_connection(("127.0.0.1", port))
s.settimeout(5)
s.sendall(("POST /execute HTTP/1.1\r\nHost: x\r\nX-API-Key: %s\r\n"
           "Content-Type: application/json\r\nExpect: 100-Continue\r\n"
           "Content-Length: %d\r\n\r\n" % (key, len(body))).encode())
got = b""
try:
    while b"\r\n\r\n" not in got:
        b = s.recv(65536)
        if not b:
            break
        got += b
except socket.timeout:
    print("TIMEOUT waiting for the interim response")
if got.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"):
    s.sendall(body)
    got = got[len(b"HTTP/1.1 100 Continue\r\n\r\n"):]
    print("GOT-100")
s.settimeout(10)
try:
    while True:
        b = s.recv(65536)
        if not b:
            break
        got += b
except (ConnectionResetError, socket.timeout):
    pass
sys.stdout.write(got.decode("utf-8", "replace"))
