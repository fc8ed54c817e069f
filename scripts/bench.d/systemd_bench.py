"""`scripts/bench --systemd` and `--systemd-breakdown`: what the unit's
sandboxing costs per connection, under a real systemd.

The Debian 12 container of scripts/test-systemd (scripts/nspawn-lib.sh, via
scripts/bench.d/container) gets `make install DESTDIR=`, boots, and runs one
socket + service pair per variant of the installed pyexec@.service, each on
its own loopback port (127.0.0.1:8100, 8101, ...):

  hardened  the unit as installed
  bare      the same unit without any sandboxing directive (SANDBOXING below):
            ExecStart, the Standard* streams, Environment, LoadCredential,
            StateDirectory and the resource bounds (RuntimeMaxSec, Memory*,
            TasksMax, Limit*, OOMPolicy) stay; DynamicUser goes, so the
            executor starts as root and walls its worker in itself (new net,
            ipc, uts and mount namespaces, user nobody, no capabilities,
            no_new_privs, seccomp, Landlock): the executor, not the unit
  -X        (--systemd-breakdown) the hardened unit without one group of
            directives, and the candidate units of CANDIDATES

Every copy differs from its source only in the socket it belongs to and its
own StateDirectory (so that no two variants share usage records or locks).
The load generator (loadgen.c, built statically on the host) runs inside the
container and drives the variants alternately (rounds; each round visits
every variant in a rotated order), with the README's seed request.  The
exposure is `systemd-analyze security --offline=yes` of each variant, with
the checks it fails beyond those the hardened unit fails.  "in pyexec" is
the median of the stages pyexec logged for the measured requests (from its
start to its reply); "outside" is p50 minus that: connect, systemd's accept,
the instance's unit and cgroup, the fork and the sandbox set-up, exec, and
the dynamic linker.
"""
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

BENCH_D = os.path.dirname(os.path.abspath(__file__))
LIB = "/usr/local/lib/pyexec-bench"    # inside the container
UNITS = "/etc/systemd/system"
PORT0 = 8100
PREFIX = "pb-"                         # pb-<variant>.socket, pb-<variant>@.service
STATIC_USER = "pyexec-bench"           # for the variants with a static User=

# Sandboxing directives (systemd.exec: user/group identity, capabilities,
# security, sandboxing, system call filtering; systemd.resource-control: IP
# and device access).  The bare variant has none of them.
SANDBOXING = set("""
User Group DynamicUser SupplementaryGroups PAMName NoNewPrivileges SecureBits
CapabilityBoundingSet AmbientCapabilities PrivateUsers PrivateNetwork
NetworkNamespacePath PrivateTmp PrivateDevices PrivateIPC IPCNamespacePath
PrivateMounts ProtectSystem ProtectHome ProtectHostname ProtectClock
ProtectKernelTunables ProtectKernelModules ProtectKernelLogs ProtectControlGroups
ProtectProc ProcSubset ReadWritePaths ReadOnlyPaths InaccessiblePaths ExecPaths
NoExecPaths TemporaryFileSystem BindPaths BindReadOnlyPaths RootDirectory
RootImage MountAPIVFS RestrictAddressFamilies RestrictNamespaces RestrictRealtime
RestrictSUIDSGID RestrictFileSystems RestrictNetworkInterfaces LockPersonality
MemoryDenyWriteExecute RemoveIPC UMask KeyringMode Delegate DevicePolicy
DeviceAllow IPAddressDeny IPAddressAllow IPIngressFilterPath IPEgressFilterPath
SocketBindAllow SocketBindDeny SystemCallArchitectures SystemCallFilter
SystemCallErrorNumber SystemCallLog JoinsNamespaceOf SELinuxContext
AppArmorProfile SmackProcessLabel NotifyAccess
""".split())
# What the bare variant keeps: the executor, its inputs, its bounds.
KEPT = set("""
Type ExecStart StandardInput StandardOutput StandardError Environment
LoadCredential StateDirectory StateDirectoryMode RuntimeMaxSec MemoryMax
MemorySwapMax TasksMax LimitCORE LimitNOFILE LimitCPU LimitMEMLOCK
LimitMSGQUEUE OOMPolicy
""".split())

STATIC = [f"User={STATIC_USER}", f"Group={STATIC_USER}"]
# Credentials replaced by a readable copy of the keys file (measurement only).
NO_CRED = [f"Environment=PYEXEC_KEYS={LIB}/api_keys.json"]
# ... or by a copy readable by the static user's group only (0640 root:group).
GROUP_KEYS = "/etc/pyexec/api_keys.group.json"
KEYS_BY_GROUP = [f"Environment=PYEXEC_KEYS={GROUP_KEYS}"]

# --systemd-breakdown: the hardened unit without one group at a time.
# (name, directives removed, lines added, what it isolates)
MOUNT_NS = ["PrivateTmp", "PrivateDevices", "DevicePolicy", "PrivateMounts", "ProtectSystem",
            "ProtectHome", "ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs",
            "ProtectControlGroups", "ProtectProc", "ProcSubset", "ProtectClock", "DynamicUser"]
SECCOMP_ONLY = ["SystemCallFilter", "SystemCallErrorNumber", "RestrictNamespaces",
                "RestrictAddressFamilies", "MemoryDenyWriteExecute", "LockPersonality",
                "RestrictRealtime", "RestrictSUIDSGID", "SystemCallArchitectures"]
GROUPS = [
    ("PrivateNetwork", ["PrivateNetwork"], [], "network namespace per instance"),
    ("PrivateUsers", ["PrivateUsers"], [], "user namespace per instance"),
    ("DynamicUser (static User= instead)", ["DynamicUser"], STATIC,
     "DynamicUser's implied ProtectSystem=strict, PrivateTmp, RemoveIPC ... are explicit "
     "in the unit: this is the user allocation alone"),
    ("PrivateIPC", ["PrivateIPC"], [], "IPC namespace"),
    ("PrivateTmp+ProtectSystem+ProtectHome+PrivateMounts (+static User=)",
     ["PrivateTmp", "ProtectSystem", "ProtectHome", "PrivateMounts", "DynamicUser"], STATIC,
     "the file-system basics (DynamicUser implies the first two, so it goes too; "
     "compare with the DynamicUser row)"),
    ("PrivateDevices", ["PrivateDevices", "DevicePolicy"], [],
     "private /dev, device access policy"),
    ("ProtectProc+ProcSubset", ["ProtectProc", "ProcSubset"], [], "a /proc of its own"),
    ("ProtectKernel*+ProtectControlGroups",
     ["ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs",
      "ProtectControlGroups"], [], "read-only or inaccessible /proc/sys, /sys, modules, "
     "kernel log, cgroups (+ seccomp)"),
    ("mount namespace (all) (+static User=)", MOUNT_NS, STATIC,
     "no mount namespace at all (a static User=: DynamicUser implies one)"),
    ("SystemCallFilter", ["SystemCallFilter", "SystemCallErrorNumber"], [],
     "the unit's system call filter"),
    ("RestrictNamespaces", ["RestrictNamespaces"], [], "seccomp"),
    ("MemoryDenyWriteExecute", ["MemoryDenyWriteExecute"], [], "seccomp"),
    ("all seccomp-only directives", SECCOMP_ONLY, [],
     "SystemCallFilter, RestrictNamespaces, RestrictAddressFamilies, "
     "MemoryDenyWriteExecute, LockPersonality, RestrictRealtime, RestrictSUIDSGID, "
     "SystemCallArchitectures: every filter the unit stacks"),
    ("IPAddressDeny", ["IPAddressDeny"], [], "cgroup BPF firewall"),
    ("LoadCredential", ["LoadCredential"], NO_CRED,
     "keys file read in place (a world-readable copy: measurement only)"),
]

# --systemd-candidates: units meant to keep the hardened unit's exposure at
# less cost.  (name, directives removed, lines added, what it is, options)
CANDIDATES = [
    ("A: Accept=yes, -PrivateIPC -LoadCredential, static User=",
     ["PrivateIPC", "LoadCredential", "DynamicUser"], STATIC + KEYS_BY_GROUP,
     "only directives the score does not count, and whose protection pyexec has itself: "
     "its worker may not use SysV/POSIX IPC (seccomp allow-list); the keys file "
     "0640 root:<the user's group>, read in place, instead of a credential copy; a static "
     "user instead of a dynamic one (the score rates both alike)", {}),
    ("B: Accept=no, the hardened directives", [], [],
     "one service, sandboxed once, forks and execs a fresh pyexec per connection "
     "(scripts/bench.d/acceptor stands in for an accept loop in pyexec); its "
     "credential is copied at service start only", {"accept": False}),
    ("B1: Accept=no, static User=, keys read in place",
     ["LoadCredential", "DynamicUser"], STATIC + KEYS_BY_GROUP,
     "B with the keys file read in place (0640 root:<group>), so that manage-keys "
     "changes apply at once, as with Accept=yes", {"accept": False}),
    ("B0: Accept=no, no sandboxing", [], [],
     "the floor of that model", {"accept": False, "base": "bare"}),
]

# Accept=no candidates: one service, sandboxed once, whose ExecStart is
# scripts/bench.d/acceptor (accept, fork, exec pyexec with the connection as
# stdin/stdout).  Per-connection settings become per-service ones: no
# RuntimeMaxSec= (pyexec's own timers bound a connection), TasksMax= and
# MemoryMax= for ACCEPTOR_MAX connections.
ACCEPTOR_MAX = 32
ACCEPTOR_REPLACES = {"ExecStart", "StandardInput", "StandardOutput", "RuntimeMaxSec",
                     "TasksMax", "MemoryMax", "OOMPolicy"}
# LimitAS= (per process): the address-space backstop pyexec sets itself
# when it may (memory_mb + 512 MiB, prod); the unit's filter denies it
# setrlimit.  OOMPolicy=continue: an OOM kill ends one connection, not all.
ACCEPTOR_ADDS = ["StandardInput=null", "StandardOutput=journal",
                 f"TasksMax={4 * ACCEPTOR_MAX + 1}", "MemoryMax=8G", "LimitAS=768M",
                 "OOMPolicy=continue"]


class Fail(Exception):
    pass


def log(msg):
    print(f"bench --systemd: {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------- unit files
def directive(line):
    s = line.strip()
    if not s or s[0] in "#;[" or "=" not in s:
        return None
    return s.split("=", 1)[0].strip()


def derive_service(text, name, remove=(), add=()):
    """The installed service as variant `name`: its own socket and state
    directory, without the directives in `remove`, plus the lines `add`."""
    out, section, removed = [], None, set()

    def end_service():
        out.extend(add)
        out.append(f"Environment=PYEXEC_STATE=/var/lib/{name}")
        out.append(f"StateDirectory={name}")

    for line in text.splitlines():
        m = re.match(r"\s*\[(\w+)\]", line)
        if m:
            if section == "Service":
                end_service()
            section = m.group(1)
            out.append(line)
            continue
        key = directive(line)
        if section == "Unit" and key in ("Requires", "After"):
            line = line.replace("pyexec.socket", f"{name}.socket")
        if section == "Service" and (key in remove or key == "StateDirectory"):
            if key in remove:
                removed.add(key)
            continue
        out.append(line)
    if section == "Service":
        end_service()
    return "\n".join(out) + "\n", removed


def derive_socket(text, port, accept=True):
    out = []
    for line in text.splitlines():
        key = directive(line)
        if key == "ListenStream":
            line = f"ListenStream=127.0.0.1:{port}"
        elif key == "Accept" and not accept:
            line = "Accept=no"
        elif key in ("MaxConnections", "MaxConnectionsPerSource") and not accept:
            continue   # Accept=yes only; the acceptor caps its children itself
        out.append(line)
    return "\n".join(out) + "\n"


def bare_removals(text):
    """Sandboxing directives of the installed unit, and unclassified ones."""
    section, sandbox, unknown = None, set(), set()
    for line in text.splitlines():
        m = re.match(r"\s*\[(\w+)\]", line)
        if m:
            section = m.group(1)
            continue
        key = directive(line)
        if section != "Service" or not key:
            continue
        if key in SANDBOXING:
            sandbox.add(key)
        elif key not in KEPT:
            unknown.add(key)
    return sandbox, unknown


class Variant:
    def __init__(self, ident, label, remove, add, note, kind, base="hardened", accept=True):
        self.ident, self.label, self.remove, self.add = ident, label, list(remove), list(add)
        self.note, self.kind = note, kind
        self.base = "bare" if kind == "bare" else base   # what `remove` applies to
        self.accept = accept     # False: Accept=no, scripts/bench.d/acceptor as ExecStart
        self.unit = f"{PREFIX}{ident}"
        self.port = None
        self.removed = set()
        self.exposure = None
        self.failed_checks = []
        self.broken = None     # why it could not serve, if it could not


# ------------------------------------------------------------- container
class Container:
    def __init__(self):
        helper = os.path.join(BENCH_D, "container")
        self.proc = subprocess.Popen([helper], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        self.info = {}
        for line in self.proc.stdout:
            line = line.strip()
            if line == "READY":
                break
            k, _, v = line.partition("=")
            self.info[k] = v
        if "CPID" not in self.info or self.proc.poll() is not None:
            self.close()
            raise Fail("the container did not come up (see above)")
        self.root = self.info["ROOT"]
        self.ne_prefix = ["nsenter", "--target", self.info["CPID"], "--mount", "--uts", "--ipc",
                          "--net", "--pid", "--root", "--wd", "--", "/usr/bin/env", "-i",
                          f"PATH={self.info['SYS_PATH']}", "LANG=C.UTF-8", "SYSTEMD_PAGER=",
                          "SYSTEMD_COLORS=0"]

    def ne(self, *cmd, check=True):
        r = subprocess.run(self.ne_prefix + list(cmd), stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if check and r.returncode != 0:
            raise Fail(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr.strip()[-2000:]}")
        return r

    def path(self, p):
        return self.root + p

    def write(self, p, text, mode=0o644):
        with open(self.path(p), "w") as f:
            f.write(text)
        os.chmod(self.path(p), mode)

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()   # EOF: the helper powers off and removes the tree
            except OSError:
                pass
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                self.proc.wait()


# ------------------------------------------------------------------ bench
class SystemdBench:
    def __init__(self, args, seed_body):
        self.args = args
        self.seed_body = seed_body
        self.c = None
        self.acceptors = {}      # variant ident -> host PID of its acceptor

    def setup(self, variants):
        if os.geteuid() != 0:
            raise Fail("must run as root (debootstrap, mounts, systemd-nspawn)")
        for tool in ("cc", "nsenter", "systemd-nspawn"):
            if not shutil.which(tool):
                raise Fail(f"{tool} not found")
        t0 = time.monotonic()
        self.c = c = Container()
        log(f"container up ({time.monotonic() - t0:.0f} s), tree {c.root}")
        os.makedirs(c.path(LIB), exist_ok=True)
        # Static: the tree's libc is not the host's concern.
        for prog in ("loadgen", "acceptor"):
            src, out = os.path.join(BENCH_D, f"{prog}.c"), c.path(f"{LIB}/{prog}")
            r = subprocess.run(["cc", "-O2", "-static", "-pthread", "-Wall", "-Wextra", "-Werror",
                                "-o", out, src], stderr=subprocess.PIPE, text=True)
            if r.returncode != 0:
                log("static link failed, linking dynamically: " + r.stderr.strip()[-300:])
                subprocess.run(["cc", "-O2", "-pthread", "-o", out, src], check=True)
        # A key without practical rate or concurrency limits: the bench
        # measures start-up, not admission control.
        keys = c.path("/etc/pyexec/api_keys.json")
        mk = c.path(c.info["BINDIR"] + "/manage-keys")
        r = subprocess.run([mk, "--keys", keys, "add", "--name", "bench", "--env", "test",
                            "--rate", "1000000/min", "--concurrency", "10000"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0 or not r.stdout.startswith("sk_test_"):
            raise Fail(f"manage-keys add: {r.stderr.strip()}")
        key = r.stdout.strip()
        shutil.copy(keys, c.path(f"{LIB}/api_keys.json"))
        os.chmod(c.path(f"{LIB}/api_keys.json"), 0o644)
        for rid in ("warm", "meas-c1", "meas-c4"):
            req = (b"POST /execute HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: " + key.encode() +
                   b"\r\nContent-Type: application/json\r\nX-Request-Id: bench-sd-" +
                   rid.encode() + b"\r\nContent-Length: %d\r\n\r\n" % len(self.seed_body) +
                   self.seed_body)
            with open(c.path(f"{LIB}/req-{rid}"), "wb") as f:
                f.write(req)
        # The static user of some variants, and a keys file only its group reads.
        c.ne("useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
             "--shell", "/usr/sbin/nologin", STATIC_USER)
        c.ne("install", "-m", "0640", "-o", "root", "-g", STATIC_USER,
             "/etc/pyexec/api_keys.json", GROUP_KEYS)

        with open(c.path(f"{UNITS}/pyexec@.service")) as f:
            service = f.read()
        with open(c.path(f"{UNITS}/pyexec.socket")) as f:
            socket_text = f.read()
        sandbox, unknown = bare_removals(service)
        if unknown:
            log("directives neither sandboxing nor kept (the bare variant keeps them): " +
                ", ".join(sorted(unknown)))
        exec_line = next(line for line in service.splitlines() if directive(line) == "ExecStart")
        pyexec_bin = exec_line.split("=", 1)[1].strip()
        for i, v in enumerate(variants):
            v.port = PORT0 + i
            remove = set(v.remove) | (sandbox if v.base == "bare" else set())
            add = list(v.add)
            if not v.accept:
                remove |= ACCEPTOR_REPLACES
                add = [f"ExecStart={LIB}/acceptor {ACCEPTOR_MAX} {pyexec_bin}"] + ACCEPTOR_ADDS + add
            text, removed = derive_service(service, v.unit, remove, add)
            v.removed = removed - (ACCEPTOR_REPLACES if not v.accept else set())
            c.write(f"{UNITS}/{v.unit}{'@' if v.accept else ''}.service", text)
            c.write(f"{UNITS}/{v.unit}.socket", derive_socket(socket_text, v.port, v.accept))
            if v.kind not in ("bare", "hardened") and v.remove and not v.removed and not v.add:
                v.broken = "none of its directives is in the unit"
        c.ne("systemctl", "daemon-reload")
        self.scores(variants)
        live = [v for v in variants if not v.broken]
        c.ne("systemctl", "start", *[f"{v.unit}.socket" for v in live])
        for v in live:
            lat, bad, st, _ = self.load(v, 1, 1, "warm")
            if bad:
                j = c.ne("journalctl", "-u", f"{v.unit}@*", "-n", "5", "-o", "cat", "--no-pager",
                         check=False).stdout.strip()
                v.broken = f"seed request: statuses {st}; journal: {j[-600:]}"
                log(f"variant {v.label} does not serve: {v.broken}")
        for v in variants:
            if v.broken and v.kind in ("hardened", "bare"):
                raise Fail(f"the {v.kind} unit does not serve: {v.broken}")

    def scores(self, variants):
        hard_failed = None
        for v in variants:
            path = f"{UNITS}/{v.unit}{'@' if v.accept else ''}.service"
            r = self.c.ne("systemd-analyze", "security", "--offline=yes", path, check=False)
            m = re.findall(r"Overall exposure level for [^:]*: ([0-9.]+)", r.stdout)
            v.exposure = float(m[-1]) if m else None
            r = self.c.ne("systemd-analyze", "security", "--offline=yes", "--json=short", path,
                          check=False)
            try:
                v.failed_checks = sorted(t["name"] for t in json.loads(r.stdout)
                                         if t.get("set") is False)
            except ValueError:
                v.failed_checks = ["?"]
            if v.kind == "hardened":
                hard_failed = set(v.failed_checks)
        for v in variants:
            v.new_failed = [n for n in v.failed_checks if n not in (hard_failed or set())]

    def load(self, v, conc, n, rid):
        r = self.c.ne(f"{LIB}/loadgen", "127.0.0.1", str(v.port), str(conc), str(n),
                      f"{LIB}/req-{rid}", "200", '"result":3.0')
        lat, bad, statuses, wall = [], 0, {}, 0
        for line in r.stdout.splitlines():
            f = line.split()
            if f[0] == "wall_us":
                wall = int(f[1])
                continue
            statuses[f[1]] = statuses.get(f[1], 0) + 1
            if f[2] == "1":
                lat.append(int(f[0]))
            else:
                bad += 1
        return lat, bad, statuses, wall

    # --- CPU accounting, from the host's /proc ---------------------------
    # The container's systemd reaps every Accept=yes instance, so its utime +
    # stime + cutime + cstime grows by systemd's own work for a connection
    # (unit, cgroup, job, clean-up), the forked child's sandbox set-up, and
    # pyexec with its worker.  An acceptor (Accept=no) reaps its pyexec
    # children itself: its four fields count too.  Not counted: kernel
    # threads (e.g. the asynchronous clean-up of a network namespace) and
    # journald.  Wall time suffers from other work on the machine; CPU time
    # far less.
    @staticmethod
    def proc_stat(pid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                data = f.read()
        except OSError:
            return None
        rest = data[data.rindex(")") + 2:].split()
        return {"ppid": int(rest[1]), "ticks": sum(int(x) for x in rest[11:15]),
                "comm": data[data.index("(") + 1:data.rindex(")")]}

    def processes(self):
        """Host PIDs of the container's processes, with their cgroup lines."""
        out = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/cgroup") as f:
                    cg = f.read()
            except OSError:
                continue
            if f"/{PREFIX}" in cg:
                out.append((int(d), cg))
        return out

    def find_acceptors(self, variants):
        cpid = int(self.c.info["CPID"])
        self.acceptors = {}
        for pid, cg in self.processes():
            st = self.proc_stat(pid)
            if st and st["ppid"] == cpid and st["comm"] == "acceptor":
                for v in variants:
                    if f"/{v.unit}.service" in cg:
                        self.acceptors[v.ident] = pid

    def cpu_ticks(self):
        pids = [int(self.c.info["CPID"])] + list(self.acceptors.values())
        return sum((self.proc_stat(p) or {"ticks": 0})["ticks"] for p in pids)

    def settle(self, v, timeout=5.0):
        """Wait until no process of v serves a connection any more (its
        instances have been reaped), then a little for systemd's clean-up."""
        deadline = time.monotonic() + timeout
        acc = self.acceptors.get(v.ident)
        mark = f"/{v.unit}@" if v.accept else f"/{v.unit}.service"
        while time.monotonic() < deadline:
            if not any(mark in cg and pid != acc for pid, cg in self.processes()):
                break
            time.sleep(0.02)
        time.sleep(0.05)

    def run(self, variants, workloads, rounds, n):
        """Alternating rounds of short blocks; returns acc[(variant ident, conc)]."""
        live = [v for v in variants if not v.broken]
        acc = {(v.ident, c): {"lat": [], "round_p50": [], "bad": 0, "statuses": {}, "wall": 0,
                              "n": 0, "ticks": 0} for v in live for c in workloads}
        for v in live:           # warm-up: the first instances load the unit, the user ...
            self.load(v, 1, 2, "warm")
        self.find_acceptors(live)
        for v in live:
            if not v.accept and v.ident not in self.acceptors:
                raise Fail(f"{v.label}: its acceptor process is not found")
        t0 = time.monotonic()
        for r in range(rounds):
            k = r % len(live)
            order = live[k:] + live[:k]
            if r % 2:
                order.reverse()
            for conc in workloads:
                m = n if conc == 1 else 2 * n   # whole waves, for req/s
                for v in order:
                    ticks0 = self.cpu_ticks()
                    lat, bad, st, wall = self.load(v, conc, m, f"meas-c{conc}")
                    self.settle(v)
                    a = acc[(v.ident, conc)]
                    a["ticks"] += self.cpu_ticks() - ticks0
                    a["lat"] += lat
                    a["round_p50"].append(statistics.median(lat) if lat else float("nan"))
                    a["bad"] += bad
                    a["wall"] += wall
                    a["n"] += m
                    for s, cnt in st.items():
                        a["statuses"][s] = a["statuses"].get(s, 0) + cnt
            log(f"round {r + 1}/{rounds} done ({time.monotonic() - t0:.0f} s)")
        return acc

    def inside(self, variants):
        """Median time inside pyexec (sum of its logged stages) of the
        measured requests at concurrency 1, per variant."""
        r = self.c.ne("journalctl", "-o", "json", "--output-fields=MESSAGE,_SYSTEMD_UNIT",
                      "--no-pager", check=False)
        per = {}
        for line in r.stdout.splitlines():
            try:
                e = json.loads(line)
            except ValueError:
                continue
            msg, unit = e.get("MESSAGE"), e.get("_SYSTEMD_UNIT", "")
            if not isinstance(msg, str) or "request_id=bench-sd-meas-c1 " not in msg:
                continue
            m = re.search(r"stages_us=(\S+)", msg)
            if not m or not unit.startswith(PREFIX):
                continue
            total = sum(int(kv.split(":")[1]) for kv in m.group(1).split(",") if ":" in kv)
            per.setdefault(re.sub(r"(@.*)?\.service$", "", unit), []).append(total)
        return {v.ident: statistics.median(per[v.unit]) / 1000 if per.get(v.unit) else None
                for v in variants}

    def close(self):
        if self.c:
            self.c.close()


def pct(vals, q):
    vals = sorted(vals)
    if not vals:
        return float("nan")
    return vals[max(0, math.ceil(q * len(vals)) - 1)] / 1000


def fnum(v, spec):
    if v is None or v != v:
        return "-".rjust(int(re.match(r"[+]?(\d*)", spec).group(1) or 1))
    return format(v, spec)


def div(a, b):
    return a / b if a is not None and b and a == a and b == b else None


def row_stats(a):
    lat = a["lat"]
    hz = os.sysconf("SC_CLK_TCK")
    return {"n": a["n"], "errors": a["bad"], "statuses": a["statuses"],
            "cpu_ms": a["ticks"] * 1000 / hz / a["n"] if a["n"] else float("nan"),
            "p50_ms": pct(lat, 0.5), "p99_ms": pct(lat, 0.99),
            "rps": (a["n"] - a["bad"]) / (a["wall"] / 1e6) if a["wall"] else float("nan"),
            "round_p50_ms": [x / 1000 for x in a["round_p50"]]}


def checks_text(names):
    """Failed checks, one word per directive (CapabilityBoundingSet x26)."""
    counts = {}
    for n in names:
        k = n.split("=")[0]
        counts[k] = counts.get(k, 0) + 1
    return " ".join(k if c == 1 else f"{k}x{c}" for k, c in counts.items())


def exposure_text(v):
    e = fnum(v.exposure, ".1f")
    new = getattr(v, "new_failed", None)
    if not new:
        return e
    if len(new) > 16:
        return f"{e} +{len(new)} checks (--json lists them)"
    return f"{e} +{checks_text(new)}"


def paired_delta(r, base):
    d = [x - y for x, y in zip(r["round_p50_ms"], base["round_p50_ms"]) if x == x and y == y]
    return statistics.median(d) if d else None


def measure(args, variants, workloads, rounds, n, seed_body):
    b = SystemdBench(args, seed_body)
    t0 = time.monotonic()
    try:
        b.setup(variants)
        acc = b.run(variants, workloads, rounds, n)
        inside = b.inside(variants)
    finally:
        b.close()
    rows = {k: row_stats(a) for k, a in acc.items()}
    for (ident, conc), r in rows.items():
        r["in_pyexec_ms"] = inside.get(ident) if conc == 1 else None
        r["outside_ms"] = (r["p50_ms"] - r["in_pyexec_ms"]) if r["in_pyexec_ms"] else None
    return rows, time.monotonic() - t0


def legend():
    print("p50/p99: latency from connect() to the complete response; req/s: requests over "
          "the wall time of the runs")
    print("CPU ms/conn: CPU of the container's systemd and what it reaps (sandbox set-up, "
          "pyexec, its worker) per connection; robust to other work on the machine")
    print("in pyexec: median of pyexec's logged stages (its start to its reply); "
          "outside = p50 - in pyexec (accept, unit, fork, sandbox, exec, ld.so)")
    print("exposure: systemd-analyze security --offline=yes; '+Check' = checks it fails "
          "that the hardened unit passes\n")


# ------------------------------------------------------------ the modes
def compare(args, seed_body):
    """--systemd: hardened against bare, concurrency 1 and 4."""
    rounds = args.rounds or 10
    n = args.requests or 10
    variants = [Variant("hardened", "hardened", [], [], "", "hardened"),
                Variant("bare", "bare", [], [], "", "bare")]
    rows, elapsed = measure(args, variants, [1, 4], rounds, n, seed_body)
    print(f"\npyexec under systemd: the installed (hardened) unit against the same unit "
          f"without its sandboxing; {rounds} rounds x {n} requests per unit and concurrency, "
          f"alternating; {os.cpu_count()} CPUs, {elapsed:.0f} s")
    print(f"bare = hardened without: {', '.join(sorted(variants[1].removed))}")
    print("(bare runs as root, so pyexec puts its worker in new net/ipc/uts/mount namespaces "
          "and switches it to nobody itself)\n")
    legend()
    hdr = (f"{'unit':<9} {'c':>1} {'n':>4} {'err':>3} | {'p50 ms':>7} {'p99 ms':>7} "
           f"{'req/s':>6} | {'CPU ms/conn':>11} | {'in pyexec':>9} {'outside':>7} | exposure")
    print(hdr)
    print("-" * len(hdr))
    for conc in (1, 4):
        for v in variants:
            r = rows[(v.ident, conc)]
            print(f"{v.ident:<9} {conc:>1} {r['n']:>4} {r['errors']:>3} | "
                  f"{fnum(r['p50_ms'], '7.2f')} {fnum(r['p99_ms'], '7.2f')} "
                  f"{fnum(r['rps'], '6.1f')} | {fnum(r['cpu_ms'], '11.1f')} | "
                  f"{fnum(r['in_pyexec_ms'], '9.2f')} {fnum(r['outside_ms'], '7.2f')} | "
                  f"{fnum(v.exposure, '.1f')}")
        h, bb = rows[("hardened", conc)], rows[("bare", conc)]
        print(f"{'hard/bare':<9} {conc:>1} {'':>4} {'':>3} | "
              f"{fnum(div(h['p50_ms'], bb['p50_ms']), '6.2f')}x "
              f"{fnum(div(h['p99_ms'], bb['p99_ms']), '6.2f')}x "
              f"{fnum(div(bb['rps'], h['rps']), '5.2f')}x | "
              f"{fnum(div(h['cpu_ms'], bb['cpu_ms']), '10.2f')}x | (req/s: bare / hardened)")
        paired = [x / y for x, y in zip(h["round_p50_ms"], bb["round_p50_ms"]) if y]
        if paired:
            print(f"{'':<9} {'':>1} {'':>4} {'':>3}   per-round p50 ratios: "
                  f"{' '.join(f'{x:.2f}' for x in paired)}")
        print()
    ratio = div(rows[("hardened", 1)]["p50_ms"], rows[("bare", 1)]["p50_ms"])
    ok = ratio is not None and ratio <= 1.3
    print(f"target: hardened p50 at c=1 <= 1.3x bare: {'PASS' if ok else 'MISS'} "
          f"({fnum(ratio, '.2f')}x; CPU per connection "
          f"{fnum(div(rows[('hardened', 1)]['cpu_ms'], rows[('bare', 1)]['cpu_ms']), '.2f')}x)")
    errors = sum(r["errors"] for r in rows.values())
    if args.json:
        dump(args.json, {"mode": "systemd", "rounds": rounds, "requests": n,
                         "elapsed_s": elapsed, "variants": [vdoc(v) for v in variants],
                         "rows": [{"unit": k[0], "concurrency": k[1], **r}
                                  for k, r in rows.items()],
                         "ratio_p50_c1": ratio})
    return 1 if errors or (args.strict and not ok) else 0


def breakdown(args, seed_body):
    """--systemd-breakdown: p50 at c=1 of the hardened unit without each group."""
    rounds = args.rounds or 8
    n = args.requests or 8
    variants = [Variant("hardened", "hardened (as installed)", [], [], "", "hardened")]
    for i, (label, remove, add, note) in enumerate(GROUPS):
        variants.append(Variant(f"g{i:02d}", "- " + label, remove, add, note, "group"))
    variants.append(Variant("bare", "bare (no sandboxing)", [], [], "", "bare"))
    rows, elapsed = measure(args, variants, [1], rounds, n, seed_body)
    rows = {k[0]: r for k, r in rows.items()}
    hard, bare = rows["hardened"], rows["bare"]
    print(f"\npyexec under systemd, breakdown: the hardened unit without one group of "
          f"directives at a time, concurrency 1; {rounds} rounds x {n} requests per variant, "
          f"alternating; {os.cpu_count()} CPUs, {elapsed:.0f} s")
    print("delta: median over rounds of (variant p50 - hardened p50) in the same round; "
          "dCPU: CPU ms/conn - the hardened unit's")
    legend()
    w = max(len(v.label) for v in variants)
    hdr = (f"{'directives removed':<{w}} {'p50 ms':>7} {'delta':>7} {'x bare':>6} | "
           f"{'CPU ms/conn':>11} {'dCPU':>6} | {'in pyexec':>9} {'outside':>7} | exposure")
    print(hdr)
    print("-" * len(hdr))
    for v in variants:
        if v.broken:
            print(f"{v.label:<{w}} does not serve: {v.broken[:200]}")
            continue
        r = rows[v.ident]
        v.result = {"p50_ms": r["p50_ms"], "delta_ms": paired_delta(r, hard),
                    "x_bare": div(r["p50_ms"], bare["p50_ms"]), "cpu_ms": r["cpu_ms"],
                    "dcpu_ms": r["cpu_ms"] - hard["cpu_ms"], "in_pyexec_ms": r["in_pyexec_ms"],
                    "errors": r["errors"], "statuses": r["statuses"]}
        err = f"  ({r['errors']} errors: {r['statuses']})" if r["errors"] else ""
        print(f"{v.label:<{w}} {fnum(r['p50_ms'], '7.2f')} {fnum(v.result['delta_ms'], '+7.2f')} "
              f"{fnum(v.result['x_bare'], '6.2f')} | {fnum(r['cpu_ms'], '11.1f')} "
              f"{fnum(v.result['dcpu_ms'], '+6.1f')} | {fnum(r['in_pyexec_ms'], '9.2f')} "
              f"{fnum(r['outside_ms'], '7.2f')} | {exposure_text(v)}{err}")
    print("\nwhat each row isolates:")
    for v in variants:
        if v.note:
            print(f"  {v.label}: {v.note}")
    errors = sum(r["errors"] for r in rows.values())
    if args.json:
        dump(args.json, {"mode": "systemd-breakdown", "rounds": rounds, "requests": n,
                         "elapsed_s": elapsed,
                         "variants": [dict(vdoc(v), **getattr(v, "result", {}))
                                      for v in variants]})
    return 1 if errors else 0


def candidates(args, seed_body):
    """--systemd-candidates: CANDIDATES against hardened and bare, c=1 and 4."""
    rounds = args.rounds or 8
    n = args.requests or 8
    variants = [Variant("hardened", "hardened (as installed)", [], [], "", "hardened"),
                Variant("bare", "bare (no sandboxing)", [], [], "", "bare")]
    for i, (label, remove, add, note, opts) in enumerate(CANDIDATES):
        variants.append(Variant(f"c{i:02d}", label, remove, add, note, "candidate", **opts))
    rows, elapsed = measure(args, variants, [1, 4], rounds, n, seed_body)
    print(f"\npyexec under systemd, candidate units against the installed (hardened) one and "
          f"the bare one; {rounds} rounds x {n} requests per unit and concurrency, "
          f"alternating; {os.cpu_count()} CPUs, {elapsed:.0f} s")
    print("x bare: p50 (and CPU) / the bare unit's (Accept=yes, no sandboxing), same "
          "concurrency; the goal is <= 1.3 at the hardened unit's exposure")
    legend()
    w = max(len(v.label) for v in variants)
    hdr = (f"{'unit':<{w}} {'c':>1} {'p50 ms':>7} {'x bare':>6} {'p99 ms':>7} {'req/s':>6} | "
           f"{'CPU ms/conn':>11} {'x bare':>6} | {'in pyexec':>9} {'outside':>7} | exposure")
    print(hdr)
    print("-" * len(hdr))
    for conc in (1, 4):
        bare = rows.get(("bare", conc))
        for v in variants:
            if v.broken:
                if conc == 1:
                    print(f"{v.label:<{w}} does not serve: {v.broken[:200]}")
                continue
            r = rows[(v.ident, conc)]
            err = f"  ({r['errors']} errors: {r['statuses']})" if r["errors"] else ""
            print(f"{v.label:<{w}} {conc:>1} {fnum(r['p50_ms'], '7.2f')} "
                  f"{fnum(div(r['p50_ms'], bare['p50_ms']), '6.2f')} "
                  f"{fnum(r['p99_ms'], '7.2f')} {fnum(r['rps'], '6.1f')} | "
                  f"{fnum(r['cpu_ms'], '11.1f')} {fnum(div(r['cpu_ms'], bare['cpu_ms']), '6.2f')} | "
                  f"{fnum(r['in_pyexec_ms'], '9.2f')} {fnum(r['outside_ms'], '7.2f')} | "
                  f"{exposure_text(v)}{err}")
        print()
    print("what each candidate is:")
    for v in variants:
        if v.note:
            print(f"  {v.label}: {v.note}")
    errors = sum(r["errors"] for r in rows.values())
    if args.json:
        dump(args.json, {"mode": "systemd-candidates", "rounds": rounds, "requests": n,
                         "elapsed_s": elapsed, "variants": [vdoc(v) for v in variants],
                         "rows": [{"unit": k[0], "concurrency": k[1], **r}
                                  for k, r in rows.items()]})
    return 1 if errors else 0


def vdoc(v):
    return {"variant": v.label, "kind": v.kind, "accept": v.accept, "removed": sorted(v.removed),
            "added": v.add, "exposure": v.exposure, "failed_checks": v.failed_checks,
            "broken": v.broken}


def dump(path, doc):
    doc["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    doc["cpus"] = os.cpu_count()
    with open(path, "w") as f:
        json.dump(doc, f, indent=2, default=str)
        f.write("\n")


def main(args, seed_body):
    try:
        if args.systemd_breakdown:
            return breakdown(args, seed_body)
        if args.systemd_candidates:
            return candidates(args, seed_body)
        return compare(args, seed_body)
    except Fail as e:
        print(f"bench --systemd: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nbench --systemd: interrupted", file=sys.stderr)
        return 130
