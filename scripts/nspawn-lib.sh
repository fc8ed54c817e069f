# shellcheck shell=bash
# The Debian 12 container of scripts/test-systemd and `scripts/bench --systemd`,
# sourced by both (scripts/bench through scripts/bench.d/container):
#
#   NSPAWN_TAG=name           prefix of log lines ("name: ...")
#   nspawn_init               root check, cleanup traps, host packages
#   nspawn_base_tree          the cached base tree: $BASE (built once)
#   nspawn_run_tree           this run's overlay of it: $RUN, $ROOT, $RUN/remove
#   nspawn_install            make + make install DESTDIR=$ROOT: $UNIT $SOCKET $EXEC $BINDIR
#   nspawn_boot               systemd-nspawn --boot: $NSPAWN, $CPID, NE=(nsenter ...), ne
#   nspawn_wait_running       sets NSPAWN_STATE (running, degraded, ...)
#   nspawn_cleanup            (the EXIT trap) power off, unmount, remove $RUN;
#                             with NSPAWN_KEEP=1 leave it running and say how to enter
#
# The base tree (Debian 12 minbase + systemd + pyexec's run-time libraries +
# the host's python3-restrictedpython .deb) is built once and cached in
# $PYEXEC_TEST_CACHE (default /var/cache/pyexec-test); every run works on an
# overlay (or a copy) of it in /var/tmp/pyexec-test.XXXXXX, removed at the end
# even on failure.  The Debian mirror is the one this machine's apt sources
# use for bookworm.
#
# Failures: the set-up steps die (exit 1); nspawn_run_tree, nspawn_install and
# nspawn_boot return 1 with NSPAWN_FAIL (the step) and NSPAWN_DETAIL (lines to
# show), so that a caller can report them its own way.

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${PYEXEC_TEST_CACHE:-/var/cache/pyexec-test}
SUITE=bookworm
# python3 (not only python3-minimal): python3-restrictedpython depends on it.
INCLUDE=systemd,systemd-sysv,dbus,curl,libpython3.11,python3-minimal,python3,libcjson1,libcap-ng0,libseccomp2,libsodium23
HOST_PACKAGES="debootstrap systemd-container"
MIN_RP=8.3
SYS_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
NSPAWN_TAG=${NSPAWN_TAG:-nspawn}
NSPAWN_KEEP=${NSPAWN_KEEP:-0}
NSPAWN_FAIL='' NSPAWN_DETAIL=() NSPAWN_STATE=''
RUN='' ROOT='' NSPAWN='' CPID='' BUILD_TMP='' BASE=''
NE=()

log() { echo "$NSPAWN_TAG: $*" >&2; }
die() { log "$*"; exit 1; }
# nspawn_failed STEP [DETAIL...]: record a failure for the caller; returns 1.
# shellcheck disable=SC2034  # read by the caller
nspawn_failed() { NSPAWN_FAIL=$1; shift; NSPAWN_DETAIL=("$@"); return 1; }

# ---------------------------------------------------------------- cleanup ---
alive() { local s; s=$(ps -o stat= -p "$1" 2>/dev/null) && [[ $s != Z* ]]; }

# Unmount everything at or below $1 (deepest first).
unmount_under() {
    local d=${1%/}
    findmnt -rn -o TARGET | awk -v d="$d" '$0 == d || index($0, d "/") == 1' | sort -r |
        while read -r m; do umount -l "$m" 2>/dev/null; done
}

stop_container() {
    [ -n "$NSPAWN" ] && alive "$NSPAWN" || return 0
    # A clean poweroff from inside; then nspawn's own SIGTERM handling
    # (poweroff of the container), then SIGKILL.
    [ -n "$CPID" ] && timeout 10 nsenter --target "$CPID" --mount --uts --ipc --net --pid \
        --root --wd -- /usr/bin/env -i PATH=$SYS_PATH systemctl poweroff </dev/null >/dev/null 2>&1
    local sig
    for sig in NONE TERM KILL; do
        [ "$sig" = NONE ] || kill -"$sig" "$NSPAWN" 2>/dev/null
        for _ in $(seq 100); do alive "$NSPAWN" || return 0; sleep 0.1; done
    done
}

remove_run() {
    [ -n "$RUN" ] && [ -d "$RUN" ] || return 0
    unmount_under "$RUN"
    rm -rf --one-file-system "$RUN"
}

nspawn_cleanup() {
    if [ -n "$BUILD_TMP" ]; then
        unmount_under "$BUILD_TMP"
        rm -rf --one-file-system "$BUILD_TMP"
    fi
    if [ "$NSPAWN_KEEP" -eq 1 ] && [ -n "$NSPAWN" ] && alive "$NSPAWN"; then
        cat >&2 <<EOF
$NSPAWN_TAG: --keep: container left running
  tree:    $ROOT  (overlay of $BASE)
  nspawn:  PID $NSPAWN (console log $RUN/console.log), its systemd: PID $CPID
  enter:   nsenter --target $CPID --mount --uts --ipc --net --pid --root --wd -- /bin/bash -l
  remove:  $RUN/remove
EOF
        return
    fi
    stop_container
    remove_run
}

# ------------------------------------------------------- host packages ---
nspawn_init() {
    [ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap, mounts, systemd-nspawn)"
    trap nspawn_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM HUP
    local missing=() p apt_log
    for p in $HOST_PACKAGES; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
            missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]} (not yet in scripts/setup)"
        export DEBIAN_FRONTEND=noninteractive
        apt_log=$(mktemp)
        apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null >"$apt_log" 2>&1 ||
            { apt-get update -q </dev/null >>"$apt_log" 2>&1 &&
              apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null >>"$apt_log" 2>&1; } ||
            { tail -n 20 "$apt_log" >&2; rm -f "$apt_log"; die "could not install ${missing[*]}"; }
        rm -f "$apt_log"
    fi
}

# ------------------------------------------------------------ base tree ---
# The URI of the Debian mirror this machine's apt sources use for bookworm
# (deb822 first, then one-line sources); never a host written here.
mirror_uri() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk '
            function flush() {
                if (!found && uri != "" && deb && suite && enabled) { print uri; found = 1 }
                uri = ""; deb = 0; suite = 0; enabled = 1
            }
            BEGIN                    { enabled = 1 }
            /^[ \t]*#/               { next }
            /^[ \t]*$/               { flush(); next }
            tolower($1) == "uris:"   { uri = $2 }
            tolower($1) == "types:"  { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
            tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == "bookworm") suite = 1 }
            tolower($1) == "enabled:" { enabled = (tolower($2) != "no") }
            END                      { flush() }
        ' "$f"
    done | head -n 1 | grep . && return 0
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '
        $1 == "deb" {
            i = 2
            if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
            if ($(i + 1) == "bookworm") { print $i; exit }
        }' | head -n 1 | grep .
}

# The python3-restrictedpython .deb the host has (same version), else the
# candidate apt offers; sets RP_DEB and RP_VERSION.
find_rp_deb() {
    RP_VERSION=$(dpkg-query -W -f='${Status} ${Version}\n' python3-restrictedpython 2>/dev/null |
        awk '$3 == "installed" { print $4 }')
    RP_DEB=
    if [ -n "$RP_VERSION" ]; then
        local f=/var/cache/apt/archives/python3-restrictedpython_${RP_VERSION//:/%3a}_all.deb
        [ -f "$f" ] && RP_DEB=$f
        [ -z "$RP_DEB" ] && [ -f "$CACHE/debs/${f##*/}" ] && RP_DEB=$CACHE/debs/${f##*/}
    fi
    if [ -z "$RP_DEB" ]; then
        mkdir -p "$CACHE/debs"
        (cd "$CACHE/debs" && apt-get download -q "python3-restrictedpython${RP_VERSION:+=$RP_VERSION}" \
            </dev/null >/dev/null 2>&1) || die "apt-get download python3-restrictedpython failed"
        # shellcheck disable=SC2012
        RP_DEB=$(ls -t "$CACHE"/debs/python3-restrictedpython_*.deb | head -n 1)
        RP_VERSION=$(dpkg-deb -f "$RP_DEB" Version)
    fi
    dpkg --compare-versions "$RP_VERSION" ge "$MIN_RP" ||
        die "python3-restrictedpython $RP_VERSION is older than $MIN_RP (run scripts/setup)"
}

nspawn_base_tree() {
    local key mirror blog v old
    mkdir -p "$CACHE"
    find_rp_deb
    key=$(printf '%s\n' "$SUITE" "$INCLUDE" "restrictedpython=$RP_VERSION" "layout=1" | sha256sum | cut -c1-12)
    BASE=$CACHE/$SUITE-$key
    exec 9>"$CACHE/.lock"
    flock 9
    if [ ! -f "$BASE.ok" ]; then
        mirror=$(mirror_uri) || die "cannot find a bookworm entry in this machine's apt sources"
        unmount_under "$BASE"; rm -rf --one-file-system "$BASE"
        BUILD_TMP=$BASE.tmp
        unmount_under "$BUILD_TMP"; rm -rf --one-file-system "$BUILD_TMP"
        log "building the base tree $BASE from $mirror (once; a minute or two)"
        blog=$CACHE/build.log
        debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$BUILD_TMP" "$mirror" \
            </dev/null >"$blog" 2>&1 || { tail -n 20 "$blog" >&2; die "debootstrap failed (log: $blog)"; }
        cp "$RP_DEB" "$BUILD_TMP/tmp/rp.deb"
        chroot "$BUILD_TMP" dpkg -i /tmp/rp.deb </dev/null >>"$blog" 2>&1 ||
            { tail -n 20 "$blog" >&2; die "installing $RP_DEB into the tree failed (log: $blog)"; }
        rm -f "$BUILD_TMP/tmp/rp.deb"
        v=$(chroot "$BUILD_TMP" dpkg-query -W -f='${Version}' python3-restrictedpython 2>/dev/null)
        dpkg --compare-versions "${v:-0}" ge "$MIN_RP" || die "RestrictedPython in the tree is '${v:-none}'"
        chroot "$BUILD_TMP" apt-get clean </dev/null >>"$blog" 2>&1
        echo pyexec-test > "$BUILD_TMP/etc/hostname"
        unmount_under "$BUILD_TMP"
        mv "$BUILD_TMP" "$BASE" && BUILD_TMP= && touch "$BASE.ok"
        # Older trees (another package list or RestrictedPython), unless in use.
        for old in "$CACHE/$SUITE"-*; do
            [ "$old" = "$BASE" ] || [ "$old" = "$BASE.ok" ] && continue
            grep -qF "lowerdir=${old%.ok}" /proc/mounts && continue
            unmount_under "$old"; rm -rf --one-file-system "$old"
        done
        log "base tree ready ($(du -sh --one-file-system "$BASE" | cut -f1))"
    fi
    flock -u 9
}

# ------------------------------------------------- per-run tree + install ---
nspawn_run_tree() {
    RUN=$(mktemp -d /var/tmp/pyexec-test.XXXXXX)
    chmod 755 "$RUN"
    mkdir "$RUN/upper" "$RUN/work" "$RUN/root"
    ROOT=$RUN/root
    if ! mount -t overlay pyexec-test -o "lowerdir=$BASE,upperdir=$RUN/upper,workdir=$RUN/work" "$ROOT" 2>/dev/null; then
        log "overlayfs unavailable: copying the base tree"
        cp -a --reflink=auto "$BASE/." "$ROOT/" || { nspawn_failed "per-run copy of the base tree"; return; }
    fi
    cat > "$RUN/remove" <<EOF
#!/bin/sh
# Stop the kept container and remove this run's tree.
pid=\$(cat "$RUN/nspawn.pid" 2>/dev/null)
if [ -n "\$pid" ]; then
    kill "\$pid" 2>/dev/null     # nspawn powers the container off on SIGTERM
    while kill -0 "\$pid" 2>/dev/null; do sleep 0.2; done
fi
umount -R "$ROOT" 2>/dev/null
rm -rf --one-file-system "$RUN"
EOF
    chmod 755 "$RUN/remove"
}

# make all, make install DESTDIR=$ROOT (log: $RUN/make.log); sets UNIT,
# SOCKET (the installed units), EXEC (ExecStart's binary) and BINDIR.
nspawn_install() {
    local mlog=$RUN/make.log
    make -C "$REPO" all >"$mlog" 2>&1 </dev/null || { nspawn_failed "make" "$(tail -n 20 "$mlog")"; return; }
    make -C "$REPO" install DESTDIR="$ROOT" >>"$mlog" 2>&1 </dev/null ||
        { nspawn_failed "make install DESTDIR=..." "$(tail -n 20 "$mlog")"; return; }
    UNIT=$ROOT/etc/systemd/system/pyexec@.service
    SOCKET=$ROOT/etc/systemd/system/pyexec.socket
    [ -f "$UNIT" ] && [ -f "$SOCKET" ] ||
        { nspawn_failed "make install: units in /etc/systemd/system" "$(ls -la "$ROOT/etc/systemd/system")"; return; }
    EXEC=$(awk -F= '$1 == "ExecStart" { sub(/^[-@:+!]+/, "", $2); split($2, a, " "); print a[1]; exit }' "$UNIT")
    BINDIR=${EXEC%/*}
    [ -x "$ROOT$EXEC" ] && [ -x "$ROOT$BINDIR/manage-keys" ] ||
        { nspawn_failed "make install: binaries" "ExecStart=$EXEC"; return; }
}

# ----------------------------------------------------------------- boot ---
# Boot the tree; sets NSPAWN (systemd-nspawn's PID), CPID (the container's
# systemd) and NE, the command prefix that runs a command inside.
nspawn_boot() {
    local machine=$1
    # setsid: a Ctrl-C of the caller must not reach the container (the trap
    # powers it off); the pid file names nspawn itself even if setsid forks.
    setsid /bin/sh -c 'echo $$ > "$1"; shift; exec "$@"' sh "$RUN/nspawn.pid" \
        systemd-nspawn --quiet --directory="$ROOT" --machine="$machine" --register=no --keep-unit \
        --private-network --link-journal=no --boot </dev/null >"$RUN/console.log" 2>&1 &
    for _ in $(seq 50); do [ -s "$RUN/nspawn.pid" ] && break; sleep 0.1; done
    NSPAWN=$(cat "$RUN/nspawn.pid" 2>/dev/null)
    [ -n "$NSPAWN" ] || { nspawn_failed "systemd-nspawn started" "$(tail -n 20 "$RUN/console.log")"; return; }

    # The container's PID 1 is nspawn's child whose comm is "systemd".
    for _ in $(seq 200); do
        CPID=$(ps -o pid=,comm= --ppid "$NSPAWN" 2>/dev/null | awk '$2 == "systemd" { print $1; exit }')
        [ -n "$CPID" ] && break
        alive "$NSPAWN" || break
        sleep 0.1
    done
    [ -n "$CPID" ] || { nspawn_failed "container booted" "no systemd under nspawn $NSPAWN" \
                            "$(tail -n 20 "$RUN/console.log")"; return; }
    # Run a command inside the container (its mount, pid, net, ipc, uts
    # namespaces), with a clean environment.
    NE=(nsenter --target "$CPID" --mount --uts --ipc --net --pid --root --wd --
        /usr/bin/env -i "PATH=$SYS_PATH" LANG=C.UTF-8 SYSTEMD_PAGER= SYSTEMD_COLORS=0)
}

ne() { "${NE[@]}" "$@" </dev/null; }

# Wait (up to about a minute) for the container's systemd to finish booting;
# sets NSPAWN_STATE to what `systemctl is-system-running` said last.
nspawn_wait_running() {
    NSPAWN_STATE=
    for _ in $(seq 60); do
        NSPAWN_STATE=$(timeout 60 "${NE[@]}" systemctl is-system-running --wait </dev/null 2>/dev/null)
        case $NSPAWN_STATE in running|degraded) break ;; esac
        alive "$NSPAWN" || break
        sleep 0.5
    done
}
