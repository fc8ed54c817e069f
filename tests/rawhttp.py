"""Send stdin's bytes to 127.0.0.1:PORT unmodified and print the reply.

Used by the tests for requests curl refuses to make (malformed HTTP).
--no-shutdown keeps our sending side open, as a slow or stalled client would.
"""
import socket
import sys

port = int(sys.argv[1])
shutdown = "--no-shutdown" not in sys.argv
s = socket.create_connection(("127.0.0.1", port))
s.settimeout(25)
s.sendall(sys.stdin.buffer.read())
if shutdown:
    s.shutdown(socket.SHUT_WR)
out = b""
try:
    while True:
        b = s.recv(65536)
        if not b:
            break
        out += b
except (ConnectionResetError, socket.timeout):
    pass
sys.stdout.write(out.decode("utf-8", "replace"))
