# pyexec: build, test, run, install.  `make` builds build/pyexec and build/manage-keys.
CC      ?= cc
PREFIX  ?= /usr/local
DESTDIR ?=
BINDIR   = $(PREFIX)/bin
# Units of a distribution-style install (PREFIX=/usr) go with the
# distribution's; a local one's (/usr/local) go to the administrator's.
ifeq ($(PREFIX),/usr)
UNITDIR ?= /usr/lib/systemd/system
else
UNITDIR ?= /etc/systemd/system
endif
CONFDIR ?= /etc/pyexec
DOCDIR   = $(PREFIX)/share/doc/pyexec
LIBDIR   = $(PREFIX)/lib/pyexec

PKGS    = python3-embed libcjson libcap-ng libseccomp libsodium
CFLAGS  ?= -O2 -g
CFLAGS  += -fPIC -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wformat=2 \
           -fstack-protector-strong -D_FORTIFY_SOURCE=2 $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDFLAGS += -Wl,-z,relro,-z,now
# The version both programs print (--version): git's description of the
# checkout, else this fixed one (e.g. a release tarball).
VERSION ?= $(shell [ -e .git ] && git describe --always --dirty 2>/dev/null || echo 0.1.0)
CFLAGS  += -DPYEXEC_VERSION='"$(VERSION)"'
LIBS_PY  = $(shell pkg-config --libs python3-embed libcjson 2>/dev/null)
# libcap-ng, libseccomp and libsodium are linked statically into the
# supervisor: fewer shared objects to map and relocate at every connection.
LIBS_SUP = -Wl,-Bstatic -lcap-ng -lseccomp -lsodium -Wl,-Bdynamic -lcjson
# The worker program links libpython statically into a position-dependent
# executable, as Debian builds /usr/bin/python3 (the shared libpython is
# position-independent and ~15% slower to start and import); it exports its
# symbols for the extension modules in lib-dynload.
PYLIB      = python$(shell pkg-config --modversion python3-embed 2>/dev/null)
LIBS_WORKER = -no-pie -Wl,--export-dynamic -Wl,-Bstatic -l$(PYLIB) -lcap-ng -lseccomp \
              -Wl,-Bdynamic -lcjson -lexpat -lz -ldl -lm
LIBS_KEY = $(shell pkg-config --libs libcjson libsodium 2>/dev/null)
ASAN_FLAGS = -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

COMMON  = crypto.c keys.c
# The supervisor: no libpython (it is loaded in the worker only).
PYEXEC  = main.c config.c http.c respond.c log.c request.c body.c jsonext.c report.c \
          worker.c sandbox.c sandbox_check.c layers.c state.c ratelimit.c metrics.c $(COMMON)
# The worker program, executed by the sandboxed worker.
WORKER  = pyworker.c pyrun.c pyrepr.c pyconv.c memlimit.c jsonext.c report.c reportmsg.c utf8cut.c \
          sandbox.c layers.c
MKEYS   = manage_keys.c keystore.c state.c $(COMMON)
# Test-only: unrestricted Python in the worker's sandbox (never installed).
PROBE   = sandbox_probe.c config.c sandbox.c layers.c pyrun.c pyrepr.c pyconv.c memlimit.c jsonext.c \
          report.c reportmsg.c utf8cut.c

all: build/pyexec build/pyexec-worker build/manage-keys

build/policy_py.h: src/policy.py scripts/embed-policy | build
	scripts/embed-policy src/policy.py $@

build:
	mkdir -p build build-asan

build/%.o: src/%.c src/*.h build/policy_py.h | build
	$(CC) $(CFLAGS) -Ibuild -c -o $@ $<
# What prints the version is rebuilt when it changes.
build/version: FORCE | build
	@echo '$(VERSION)' | cmp -s - $@ || echo '$(VERSION)' > $@
build/main.o build/manage_keys.o build-asan/main.o build-asan/manage_keys.o: build/version
FORCE:
build/pyexec: $(addprefix build/,$(PYEXEC:.c=.o))
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_SUP)
build/pyexec-worker: $(addprefix build/,$(WORKER:.c=.o))
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_WORKER)
build/manage-keys: $(addprefix build/,$(MKEYS:.c=.o))
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_KEY)
build/sandbox-probe: $(addprefix build/,$(PROBE:.c=.o))
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_PY) $(LIBS_SUP)
# Test-only: unit and property tests of the allocator hooks (tests/memlimit.bats).
build/memlimit-test: tests/memlimit-test.c build/memlimit.o src/memlimit.h | build
	$(CC) $(CFLAGS) -Isrc $(LDFLAGS) -o $@ tests/memlimit-test.c build/memlimit.o $(LIBS_PY)

# Sanitizer build (ASan + UBSan) of both tools, used by the test suite too.
asan: build-asan/pyexec build-asan/pyexec-worker build-asan/manage-keys build-asan/sandbox-probe \
      build-asan/memlimit-test
build-asan/%.o: src/%.c src/*.h build/policy_py.h | build
	$(CC) $(filter-out -O2 -D_FORTIFY_SOURCE=2,$(CFLAGS)) $(ASAN_FLAGS) -Ibuild -c -o $@ $<
build-asan/pyexec: $(addprefix build-asan/,$(PYEXEC:.c=.o))
	$(CC) $(ASAN_FLAGS) -o $@ $^ $(LIBS_SUP)
build-asan/pyexec-worker: $(addprefix build-asan/,$(WORKER:.c=.o))
	$(CC) $(ASAN_FLAGS) -o $@ $^ $(LIBS_WORKER)
build-asan/manage-keys: $(addprefix build-asan/,$(MKEYS:.c=.o))
	$(CC) $(ASAN_FLAGS) -o $@ $^ $(LIBS_KEY)
build-asan/sandbox-probe: $(addprefix build-asan/,$(PROBE:.c=.o))
	$(CC) $(ASAN_FLAGS) -o $@ $^ $(LIBS_PY) $(LIBS_SUP)
build-asan/memlimit-test: tests/memlimit-test.c build-asan/memlimit.o src/memlimit.h | build
	$(CC) $(filter-out -O2 -D_FORTIFY_SOURCE=2,$(CFLAGS)) $(ASAN_FLAGS) -Isrc -o $@ \
	    tests/memlimit-test.c build-asan/memlimit.o $(LIBS_PY)

setup:
	scripts/setup

# Each libFuzzer harness runs this long in `make test` (CI).
TEST_FUZZ_SECONDS ?= 60

# The README's two commands.
run: setup
	$(MAKE) all
	scripts/run

test: setup
	$(MAKE) all build/sandbox-probe build/memlimit-test asan
	$(MAKE) -f tests/fuzz/fuzz.mk regress
	$(MAKE) -f tests/fuzz/fuzz.mk run FUZZ_SECONDS=$(TEST_FUZZ_SECONDS)
	scripts/test --all

# libFuzzer (clang, ASan+UBSan) on every parser of outside input, each for
# FUZZ_SECONDS (default 60); fails on any crash.  See tests/fuzz/README.md.
fuzz: setup
	$(MAKE) -f tests/fuzz/fuzz.mk run

fuzz-regress:
	$(MAKE) -f tests/fuzz/fuzz.mk regress

# End-to-end under a real systemd (nspawn container); part of `make test`.
test-systemd: setup
	$(MAKE) all
	scripts/test-systemd

# Several pyexec hosts behind HAProxy on this machine (network namespaces, root).
test-cluster: setup
	$(MAKE) all
	scripts/test-cluster

bench: setup
	$(MAKE) all
	scripts/bench

install: all
	install -d -m 755 $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(DOCDIR)
	install -m 755 build/pyexec build/manage-keys $(DESTDIR)$(BINDIR)/
	install -d -m 755 $(DESTDIR)$(LIBDIR)
	install -m 755 build/pyexec-worker $(DESTDIR)$(LIBDIR)/
	for u in pyexec.socket pyexec@.service; do \
	    sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@DOCDIR@|$(DOCDIR)|g' -e 's|@CONFDIR@|$(CONFDIR)|g' \
	        units/$$u > $(DESTDIR)$(UNITDIR)/$$u && chmod 644 $(DESTDIR)$(UNITDIR)/$$u || exit 1; \
	done
	install -m 644 README.md api_keys.json.sample pyexec.conf.sample $(DESTDIR)$(DOCDIR)/
	# /etc/pyexec: config readable (no secrets), keys file 0600 (manage-keys).
	install -d -m 755 $(DESTDIR)$(CONFDIR)
	[ -e $(DESTDIR)$(CONFDIR)/pyexec.conf ] || install -m 644 pyexec.conf.sample $(DESTDIR)$(CONFDIR)/pyexec.conf

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/pyexec $(DESTDIR)$(BINDIR)/manage-keys
	rm -rf $(DESTDIR)$(LIBDIR)
	rm -f $(DESTDIR)$(UNITDIR)/pyexec.socket $(DESTDIR)$(UNITDIR)/pyexec@.service
	rm -rf $(DESTDIR)$(DOCDIR)
	@echo "kept $(DESTDIR)$(CONFDIR) (keys and config); remove it by hand if wanted"

clean:
	rm -rf build build-asan build-fuzz

.PHONY: FORCE all asan setup run test test-systemd test-cluster fuzz fuzz-regress bench install uninstall clean
