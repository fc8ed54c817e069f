#!/usr/bin/env bats
# Defence in depth without RestrictedPython: build/sandbox-probe runs
# UNRESTRICTED Python inside exactly the worker's sandbox (namespaces, rlimits,
# user nobody without capabilities, no_new_privs, Landlock, seccomp).  Each
# test makes the snippet print the precise denial to stderr (its stdout is
# /dev/null), so it fails if the layer that gives that denial breaks:
# errno 13 (EACCES) is Landlock, errno 1 (EPERM) is seccomp.
# On a host that cannot apply a layer (systemd-nspawn refuses Landlock), the
# probe must refuse to run; it is then run with allow_missing_layers naming
# what is missing, and the tests that rely on a missing layer are skipped
# ("landlock unavailable here (Function not implemented)").

setup_file() {
    load helpers
    [ "$(id -u)" = 0 ] || return 0   # every test skips below
    export SANDBOX_PROBE="${SANDBOX_PROBE:-$ROOT/build/sandbox-probe}"
    export PYEXEC_CONFIG="$BATS_FILE_TMPDIR/probe.conf" PYEXEC_KEYS="$BATS_FILE_TMPDIR/api_keys.json"
    printf '[test]\ntimeout_ms = 2000\ncpu_ms = 1000\nmemory_mb = 64\n' > "$PYEXEC_CONFIG"
    "$MANAGE_KEYS" add --name "probe target" --env test > "$BATS_FILE_TMPDIR/key" 2>/dev/null
    find_missing_layers
}

# Run the probe until it stops refusing, each time allowing the layer it
# named; records "layer (reason)" lines in $BATS_FILE_TMPDIR/missing.
find_missing_layers() {
    local allow="" out i
    : > "$BATS_FILE_TMPDIR/missing"
    for i in $(seq 12); do
        printf '[global]\nallow_missing_layers = %s\n[test]\ntimeout_ms = 2000\ncpu_ms = 1000\nmemory_mb = 64\n' \
            "$allow" > "$PYEXEC_CONFIG"
        out=$("${SANDBOX_PROBE:-}" 'pass' 2>&1) && break
        [[ $out =~ sandbox\ layer\ unavailable:\ ([a-z_]+)\ \(([^\)]*)\) ]] || break
        printf '%s (%s)\n' "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" >> "$BATS_FILE_TMPDIR/missing"
        allow="$allow ${BASH_REMATCH[1]}"
    done
}

# needs LAYER...: skip when this host cannot apply one of them.
needs() {
    local l line
    for l; do
        line=$(grep "^$l " "$BATS_FILE_TMPDIR/missing" || true)
        [ -z "$line" ] || skip "$l unavailable here ${line#"$l "}"
    done
}

setup() {
    load helpers
    [ "$(id -u)" = 0 ] || skip "the probe must start as root to drop to nobody"
    [ -x "$SANDBOX_PROBE" ] || skip "no $SANDBOX_PROBE (make build/sandbox-probe)"
    NOBODY_UID=$(id -u nobody)
    NOBODY_GID=$(id -g nobody)
    SIBLING=
    CREATED=()
}

teardown() {
    [ -z "$SIBLING" ] || kill "$SIBLING" 2>/dev/null || true
    [ -z "$SIBLING" ] || wait "$SIBLING" 2>/dev/null || true
    local f
    for f in "${CREATED[@]}"; do rm -f -- "$f"; done
}

# Every snippet starts with t(label, fn): it prints "label: ALLOWED value" or
# "label: ExceptionType errno=N" on stderr.  A snippet that still runs as
# root stops at once: some tests signal -1, which as root would hit everything.
PRELUDE='import os, sys
if os.getuid() == 0 or os.geteuid() == 0:
    sys.stderr.write("REFUSING: the snippet still runs as root\n")
    os._exit(3)
def t(label, f):
    try:
        r = f()
    except BaseException as e:
        sys.stderr.write("%s: %s errno=%s\n" % (label, type(e).__name__, getattr(e, "errno", None)))
    else:
        sys.stderr.write("%s: ALLOWED %r\n" % (label, r))
    sys.stderr.flush()
'

# probe CODE: run the prelude and CODE in the sandbox; sets status and output
# (stderr included), and checks the sandbox really closed first.
probe() {
    run "$SANDBOX_PROBE" "$PRELUDE$1"
    local missing=""
    [ ! -s "$BATS_FILE_TMPDIR/missing" ] ||
        missing=" (layers $(cut -d' ' -f1 "$BATS_FILE_TMPDIR/missing" | sort_layers | sed 's/^/-/' | paste -sd,))"
    assert_line --index 0 "sandbox-probe: sandbox closed$missing, running unrestricted code"
}

# Layer names in the order the probe lists them (src/layers.h).
sort_layers() {
    awk 'BEGIN { n = split("netns ipcns utsns mntns rlimits identity capabilities no_new_privs dumpable timers landlock seccomp", o, " ")
                 for (i = 1; i <= n; i++) rank[o[i]] = i }
         { print rank[$0], $0 }' | sort -n | cut -d' ' -f2
}

# start_sibling: a process of the worker's own user (so only the sandbox, not
# file permissions or uids, stands between it and the snippet).
start_sibling() {
    setpriv --reuid="$NOBODY_UID" --regid="$NOBODY_GID" --clear-groups sleep 30 &
    SIBLING=$!
    sleep 0.1
    kill -0 "$SIBLING"
}

as_nobody() {
    setpriv --reuid="$NOBODY_UID" --regid="$NOBODY_GID" --clear-groups "$@"
}

@test "fail closed: a layer this host cannot apply makes the probe refuse to run" {
    [ -s "$BATS_FILE_TMPDIR/missing" ] || skip "every layer applies here (layers.bats forces refusals)"
    printf '[test]\nmemory_mb = 64\n' > "$BATS_FILE_TMPDIR/strict.conf"
    PYEXEC_CONFIG="$BATS_FILE_TMPDIR/strict.conf" run "$SANDBOX_PROBE" 'print("RAN")'
    assert_failure 2
    assert_output --partial "sandbox-probe: setup failed: sandbox layer unavailable: $(head -n 1 "$BATS_FILE_TMPDIR/missing")"
    refute_output --partial "RAN"
}

@test "control: the probe runs unrestricted Python once the sandbox is closed" {
    probe 't("dunder walk", lambda: ().__class__.__mro__[-1].__name__)
t("import", lambda: __import__("socket").__name__)
t("read stdlib", lambda: len(open(os.__file__).read()) > 0)'
    assert_success
    assert_line "dunder walk: ALLOWED 'object'"
    assert_line "import: ALLOWED 'socket'"
    assert_line "read stdlib: ALLOWED True"
}

@test "the keys file (0600, root) cannot be read" {
    needs landlock
    assert_equal "$(stat -c '%a %U' "$PYEXEC_KEYS")" "600 root"
    probe "t('keys file', lambda: open('$PYEXEC_KEYS').read())
t('keys dir', lambda: os.listdir('$(dirname "$PYEXEC_KEYS")'))
t('config file', lambda: open('$PYEXEC_CONFIG').read())"
    assert_success
    assert_line "keys file: PermissionError errno=13"
    assert_line "keys dir: PermissionError errno=13"
    assert_line "config file: PermissionError errno=13"
    refute_output --partial sk_test_
    refute_output --partial sha256:
}

@test "world-readable copies of the keys file under /tmp and /etc are denied by Landlock" {
    needs landlock
    local tmpcopy="/tmp/pyexec-probe-keys.$$.$BATS_TEST_NUMBER.json"
    local etccopy="/etc/pyexec-probe-keys.$$.$BATS_TEST_NUMBER.json"
    CREATED=("$tmpcopy" "$etccopy")
    install -m 0644 "$PYEXEC_KEYS" "$tmpcopy"
    install -m 0644 "$PYEXEC_KEYS" "$etccopy"
    # Control: outside the sandbox, nobody can read both copies.
    as_nobody cat "$tmpcopy" | grep -q sha256:
    as_nobody cat "$etccopy" | grep -q sha256:
    probe "t('tmp copy', lambda: open('$tmpcopy').read())
t('etc copy', lambda: open('$etccopy', 'rb').read())
t('etc copy by fd', lambda: os.read(os.open('$etccopy', os.O_RDONLY), 4096))"
    assert_success
    assert_line "tmp copy: PermissionError errno=13"
    assert_line "etc copy: PermissionError errno=13"
    assert_line "etc copy by fd: PermissionError errno=13"
    refute_output --partial sha256:
    refute_output --partial sk_test_
}

@test "/etc/passwd and /etc/shadow cannot be read" {
    needs landlock
    as_nobody cat /etc/passwd | grep -q '^root:'   # control: DAC alone allows it
    probe 't("passwd", lambda: open("/etc/passwd").read())
t("shadow", lambda: open("/etc/shadow").read())
t("passwd via getpwnam", lambda: __import__("pwd").getpwnam("root"))'
    assert_success
    assert_line "passwd: PermissionError errno=13"
    assert_line "shadow: PermissionError errno=13"
    assert_line "passwd via getpwnam: KeyError errno=None"
    refute_output --partial 'root:'
}

@test "no socket can be created: AF_INET, AF_INET6, AF_UNIX, AF_NETLINK, AF_PACKET, socketpair" {
    needs seccomp
    probe 'import socket
t("inet", lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
t("inet6 udp", lambda: socket.socket(socket.AF_INET6, socket.SOCK_DGRAM))
t("unix", lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
t("netlink", lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0))
t("packet", lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW))
t("socketpair", lambda: socket.socketpair())'
    assert_success
    local fam
    for fam in inet "inet6 udp" unix netlink packet socketpair; do
        assert_line "$fam: PermissionError errno=1"
    done
    refute_output --partial ALLOWED
}

@test "nothing can connect, even after socket() failed: create_connection to a live listener" {
    needs seccomp landlock   # getaddrinfo cannot read /etc/hosts
    local flag="$BATS_TEST_TMPDIR/connected"
    /usr/bin/python3 -c 'import socket, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
print(s.getsockname()[1], flush=True); s.settimeout(8)
try:
    s.accept(); open(sys.argv[1], "w").write("connected")
except OSError:
    pass' "$flag" > "$BATS_TEST_TMPDIR/port" &
    SIBLING=$!
    local i
    for i in $(seq 1 50); do [ -s "$BATS_TEST_TMPDIR/port" ] && break; sleep 0.05; done
    local port; port=$(cat "$BATS_TEST_TMPDIR/port")
    probe "import socket
t('socket', lambda: socket.socket())
t('create_connection', lambda: socket.create_connection(('127.0.0.1', $port), timeout=2))
t('create_connection v6', lambda: socket.create_connection(('::1', $port), timeout=2))
t('getaddrinfo', lambda: socket.getaddrinfo('localhost', $port))"
    assert_success
    assert_line "socket: PermissionError errno=1"
    assert_line "create_connection: PermissionError errno=1"
    assert_line "create_connection v6: PermissionError errno=1"
    assert_line --regexp '^getaddrinfo: gaierror errno=-[0-9]+$'
    [ ! -e "$flag" ]
}

@test "no file can be written or created: /tmp, /dev/shm, the cwd, and other ways" {
    needs seccomp
    local dir="$BATS_TEST_TMPDIR/cwd"
    CREATED=("/tmp/pyexec-probe-$$-w" "/dev/shm/pyexec-probe-$$-w")
    mkdir "$dir"
    chmod 1777 "$dir"
    echo original > "$dir/existing"
    chmod 0666 "$dir/existing"
    cd "$dir"
    probe "t('tmp', lambda: open('/tmp/pyexec-probe-$$-w', 'w'))
t('shm', lambda: open('/dev/shm/pyexec-probe-$$-w', 'w'))
t('cwd', lambda: open('created-here', 'w'))
t('append existing', lambda: open('existing', 'a'))
t('read-write existing', lambda: open('existing', 'r+'))
t('O_RDONLY|O_CREAT', lambda: os.open('created-rdonly', os.O_RDONLY | os.O_CREAT))
t('O_RDONLY|O_TRUNC', lambda: os.open('existing', os.O_RDONLY | os.O_TRUNC))
t('truncate', lambda: os.truncate('existing', 0))
t('unlink', lambda: os.unlink('existing'))
t('rename', lambda: os.rename('existing', 'renamed'))
t('mkdir', lambda: os.mkdir('newdir'))
t('symlink', lambda: os.symlink('/etc/shadow', 'link'))
t('hardlink', lambda: os.link('existing', 'hard'))
t('mkfifo', lambda: os.mkfifo('fifo'))"
    cd "$BATS_TEST_DIRNAME"
    assert_success
    local what
    for what in tmp shm cwd "append existing" "read-write existing" "O_RDONLY|O_CREAT" \
                "O_RDONLY|O_TRUNC" truncate unlink rename mkdir symlink hardlink mkfifo; do
        assert_line "$what: PermissionError errno=1"
    done
    refute_output --partial ALLOWED
    [ ! -e "/tmp/pyexec-probe-$$-w" ] && [ ! -e "/dev/shm/pyexec-probe-$$-w" ]
    assert_equal "$(ls -A "$dir")" existing
    assert_equal "$(cat "$dir/existing")" original
}

@test "no descriptor beyond 0-2 is inherited" {
    local f="$BATS_TEST_TMPDIR/inherited"
    exec 7>"$f"
    probe 'def is_open(n):
    try:
        os.fstat(n)
        return True
    except OSError:
        return False
t("fd 7", lambda: os.write(7, b"escaped"))
t("open fds above 2", lambda: [n for n in range(3, 64) if is_open(n)])'
    exec 7>&-
    assert_success
    assert_line "fd 7: OSError errno=9"
    assert_line "open fds above 2: ALLOWED []"
    [ ! -s "$f" ]
}

@test "nothing can be executed: execv, system, subprocess" {
    needs seccomp
    probe 'import subprocess
t("execv", lambda: os.execv("/bin/sh", ["sh", "-c", "echo PWNED >&2"]))
t("execve", lambda: os.execve("/usr/bin/id", ["id"], {}))
t("system", lambda: os.system("echo PWNED >&2"))
t("subprocess", lambda: subprocess.run(["/bin/echo", "PWNED"]))
t("still here", lambda: "yes")'
    assert_success
    assert_line "execv: PermissionError errno=1"
    assert_line "execve: PermissionError errno=1"
    # system() reports 127 ("the shell could not run") when its spawn fails.
    assert_line "system: ALLOWED 32512"
    assert_line "subprocess: PermissionError errno=1"
    assert_line "still here: ALLOWED 'yes'"
    refute_output --partial PWNED
    refute_output --partial 'uid='
}

@test "no process can be created: fork, posix_spawn, threads" {
    needs seccomp
    probe 't("fork", os.fork)
t("posix_spawn", lambda: os.posix_spawn("/bin/true", ["true"], {}))
t("posix_spawnp", lambda: os.posix_spawnp("true", ["true"], {}))
t("thread", lambda: __import__("threading").Thread(target=print).start())'
    assert_success
    assert_line "fork: PermissionError errno=1"
    assert_line "posix_spawn: PermissionError errno=1"
    assert_line "posix_spawnp: PermissionError errno=1"
    assert_line "thread: RuntimeError errno=None"
}

@test "no other process can be signalled, not even one of the same user" {
    needs seccomp
    start_sibling
    probe "t('kill sibling', lambda: os.kill($SIBLING, 9))
t('probe sibling', lambda: os.kill($SIBLING, 0))
t('kill init', lambda: os.kill(1, 0))
t('kill parent', lambda: os.kill(os.getppid(), 9))
t('kill all', lambda: os.kill(-1, 15))"
    assert_success
    assert_line "kill sibling: PermissionError errno=1"
    assert_line "probe sibling: PermissionError errno=1"
    assert_line "kill init: PermissionError errno=1"
    assert_line "kill parent: PermissionError errno=1"
    assert_line "kill all: PermissionError errno=1"
    refute_output --partial ALLOWED
    kill -0 "$SIBLING"   # it survived
}

@test "no other process can be traced or have its memory read" {
    needs landlock seccomp dumpable
    start_sibling
    probe "t('mem', lambda: open('/proc/$SIBLING/mem', 'rb'))
t('environ', lambda: open('/proc/$SIBLING/environ', 'rb').read())
t('maps', lambda: open('/proc/$SIBLING/maps').read())
try:
    import ctypes
except ImportError as e:
    sys.stderr.write('ctypes: ImportError %s\n' % e)
else:
    libc = ctypes.CDLL(None, use_errno=True)
    rc = libc.ptrace(16, $SIBLING, None, None)   # PTRACE_ATTACH
    sys.stderr.write('ptrace: %d errno=%d\n' % (rc, ctypes.get_errno()))"
    assert_success
    assert_line "mem: PermissionError errno=13"
    assert_line "environ: PermissionError errno=13"
    assert_line "maps: PermissionError errno=13"
    if [[ "$output" == *"ctypes: ImportError"* ]]; then
        # libffi lives outside the Landlock-readable Python directories.
        assert_line --partial "ctypes: ImportError libffi"
    else
        assert_line "ptrace: -1 errno=1"
    fi
    kill -0 "$SIBLING"
}

@test "it runs as nobody with no way back to root and no capabilities" {
    needs identity capabilities no_new_privs landlock seccomp
    probe 't("ids", lambda: (os.getuid(), os.geteuid(), os.getgid(), os.getegid()))
t("setuid 0", lambda: os.setuid(0))
t("setgid 0", lambda: os.setgid(0))
t("setgroups", lambda: os.setgroups([0]))
t("seteuid 0", lambda: os.seteuid(0))
t("status", lambda: open("/proc/self/status").read())
try:
    import ctypes
except ImportError as e:
    sys.stderr.write("ctypes: ImportError %s\n" % e)
else:
    hdr = (ctypes.c_uint32 * 2)(0x20080522, 0)
    data = (ctypes.c_uint32 * 6)()
    rc = ctypes.CDLL(None, use_errno=True).capget(hdr, data)
    sys.stderr.write("capget: %d effective=%x permitted=%x\n" % (rc, data[0], data[1]))'
    assert_success
    assert_line "ids: ALLOWED ($NOBODY_UID, $NOBODY_UID, $NOBODY_GID, $NOBODY_GID)"
    assert_line "setuid 0: PermissionError errno=1"
    assert_line "setgid 0: PermissionError errno=1"
    assert_line "setgroups: PermissionError errno=1"
    assert_line "seteuid 0: PermissionError errno=1"
    assert_line "status: PermissionError errno=13"
    if [[ "$output" != *"ctypes: ImportError"* ]]; then
        assert_line --regexp '^capget: (0 effective=0 permitted=0|-1 .*)$'
    fi
}

@test "no mounts, chroot or device nodes" {
    needs seccomp
    CREATED=(/tmp/pyexec-probe-node)
    probe 't("chroot", lambda: os.chroot("/"))
t("mknod", lambda: os.mknod("/tmp/pyexec-probe-node", 0o600 | 0o020000, os.makedev(1, 3)))
t("chdir then read", lambda: (os.chdir("/etc"), open("hostname").read()))'
    assert_success
    assert_line "chroot: PermissionError errno=1"
    assert_line "mknod: PermissionError errno=1"
    assert_line "chdir then read: PermissionError errno=1"
    [ ! -e /tmp/pyexec-probe-node ]
}

@test "network interfaces cannot be enumerated" {
    needs netns landlock seccomp
    probe 'import socket
t("if_nameindex", socket.if_nameindex)
t("sys class net", lambda: os.listdir("/sys/class/net"))
t("proc net dev", lambda: open("/proc/net/dev").read())'
    assert_success
    assert_line "if_nameindex: PermissionError errno=1"
    assert_line "sys class net: PermissionError errno=13"
    assert_line "proc net dev: PermissionError errno=13"
}

@test "the memory limit holds: a 200 MiB bytearray is a MemoryError" {
    probe 't("bytearray", lambda: len(bytearray(200 * 2**20)))
t("str", lambda: len("x" * (200 * 2**20)))
t("list", lambda: len([0] * (30 * 2**20)))
t("small still works", lambda: len(bytearray(2**20)))'
    assert_success
    assert_line "bytearray: MemoryError errno=None"
    assert_line "str: MemoryError errno=None"
    assert_line "list: MemoryError errno=None"
    assert_line "small still works: ALLOWED 1048576"
}

@test "memory outside Python's allocator is capped by RLIMIT_AS" {
    needs rlimits
    if ldd "$SANDBOX_PROBE" | grep -q libasan; then
        skip "RLIMIT_AS is off by design in the sanitizer build (ASan reserves terabytes of shadow)"
    fi
    probe 'import mmap
t("mmap 4 GiB", lambda: mmap.mmap(-1, 4 << 30))'
    assert_success
    assert_line "mmap 4 GiB: OSError errno=12"
}

@test "the CPU limit holds: while True ends by a signal within seconds" {
    needs timers rlimits
    local start end
    start=$(date +%s%N)
    run "$SANDBOX_PROBE" 'while True: pass'
    end=$(date +%s%N)
    [[ "$status" = 152 || "$status" = 137 ]] || { echo "status $status: $output"; return 1; }
    [ $(( (end - start) / 1000000 )) -lt 10000 ]
}

@test "ignoring SIGXCPU does not help: RLIMIT_CPU's hard limit kills" {
    needs rlimits
    local start end
    start=$(date +%s%N)
    run "$SANDBOX_PROBE" 'import signal
signal.signal(signal.SIGXCPU, signal.SIG_IGN)
while True: pass'
    end=$(date +%s%N)
    assert_equal "$status" 137
    [ $(( (end - start) / 1000000 )) -lt 10000 ]
}

@test "fcntl: nothing that signals or notifies another process, no locks, no F_SETFL" {
    probe 'import fcntl, struct
F_SETOWN_EX, F_SETSIG, F_SETLEASE, F_NOTIFY, F_SETPIPE_SZ = 15, 10, 1024, 1026, 1031
t("F_SETOWN", lambda: fcntl.fcntl(0, fcntl.F_SETOWN, os.getppid()))
t("F_SETOWN_EX", lambda: fcntl.fcntl(0, F_SETOWN_EX, struct.pack("ii", 1, os.getppid())))
t("F_SETSIG", lambda: fcntl.fcntl(0, F_SETSIG, 9))
t("F_SETLEASE", lambda: fcntl.fcntl(0, F_SETLEASE, fcntl.F_RDLCK))
t("F_NOTIFY", lambda: fcntl.fcntl(os.open("/usr/lib/python3", os.O_RDONLY), F_NOTIFY, 0x80000002))
t("F_SETFL O_ASYNC", lambda: fcntl.fcntl(2, fcntl.F_SETFL, os.O_ASYNC))
t("F_SETFL O_NONBLOCK", lambda: fcntl.fcntl(2, fcntl.F_SETFL, os.O_NONBLOCK))
t("F_SETLK", lambda: fcntl.lockf(os.open(os.__file__, os.O_RDONLY), fcntl.LOCK_SH | fcntl.LOCK_NB))
t("F_SETPIPE_SZ", lambda: fcntl.fcntl(2, F_SETPIPE_SZ, 4096))
t("F_GETFL", lambda: fcntl.fcntl(0, fcntl.F_GETFL) & os.O_ACCMODE)
t("F_GETFD", lambda: fcntl.fcntl(0, fcntl.F_GETFD))
t("dup", lambda: os.dup(0) > 2)
t("open", lambda: len(open(os.__file__).read(10)))'
    assert_success
    local what
    for what in F_SETOWN F_SETOWN_EX F_SETSIG F_SETLEASE F_NOTIFY "F_SETFL O_ASYNC" \
                "F_SETFL O_NONBLOCK" F_SETLK F_SETPIPE_SZ; do
        assert_line "$what: PermissionError errno=1"
    done
    assert_line "F_GETFL: ALLOWED 2"
    assert_line "F_GETFD: ALLOWED 0"
    assert_line "dup: ALLOWED True"
    assert_line "open: ALLOWED 10"
}
