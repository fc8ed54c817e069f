#!/usr/bin/python3
"""The attacker of scripts/test-systemd's sibling-isolation check.

Run as an instance of the installed pyexec@.service (a drop-in replaces only
ExecStart and the standard streams), so it has the unit's whole sandbox and
the same dynamic user as every live pyexec@ instance.  kill(-1, SIGKILL)
signals every process this user may signal: without the unit's
`SystemCallFilter=~kill ...` that is every sibling instance.
"""
import os

print("uid=%d" % os.getuid(), flush=True)
try:
    os.kill(-1, 9)
    print("kill=ok", flush=True)
except PermissionError:
    print("kill=PermissionError", flush=True)
except OSError as e:
    print("kill=%s" % e.__class__.__name__, flush=True)
