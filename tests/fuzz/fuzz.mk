# libFuzzer harnesses for pyexec's parsers of outside input (see README.md here).
#
#   make -f tests/fuzz/fuzz.mk build                  # build-fuzz/fuzz_*
#   make -f tests/fuzz/fuzz.mk run [FUZZ_SECONDS=60]  # fuzz each harness in turn
#   make -f tests/fuzz/fuzz.mk regress                # seeds + regressions once, no fuzzing
#   make -f tests/fuzz/fuzz.mk coverage               # line coverage of src/ by the corpora
#   make -f tests/fuzz/fuzz.mk clean                  # remove build-fuzz/
#
# FUZZ_TARGETS="fuzz_http fuzz_keys" limits run/regress/coverage to some
# harnesses; FUZZ_FLAGS adds libFuzzer flags to run (e.g. FUZZ_FLAGS=-seed=1).
# Works from any directory: paths are anchored at the repository root.

FUZZ_DIR := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
ROOT     := $(abspath $(FUZZ_DIR)/../..)
SRC      := $(ROOT)/src
OUT      := $(ROOT)/build-fuzz
OBJ      := $(OUT)/obj

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_FLAGS   ?=
HARNESSES    := fuzz_http fuzz_json_body fuzz_pyconv fuzz_pyresult fuzz_keys fuzz_config
FUZZ_TARGETS ?= $(HARNESSES)

SAN     := -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
CFLAGS_FUZZ := -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer $(SAN) \
               -I$(SRC) -I$(ROOT)/build \
               $(shell pkg-config --cflags python3-embed libcjson libsodium)
WARN    := -Wall -Wextra

# What each harness links: the src/ files it needs, and the libraries.
SRCS_fuzz_http      := http.c request.c
SRCS_fuzz_json_body := body.c jsonext.c request.c
SRCS_fuzz_pyconv    := pyconv.c jsonext.c
SRCS_fuzz_pyresult  := pyconv.c jsonext.c
SRCS_fuzz_keys      := keys.c crypto.c
SRCS_fuzz_config    := config.c layers.c
LIBS_fuzz_http      := -Wl,--wrap=read
LIBS_fuzz_json_body := $(shell pkg-config --libs libcjson) -lm
LIBS_fuzz_pyconv    := $(shell pkg-config --libs python3-embed libcjson)
LIBS_fuzz_pyresult  := $(LIBS_fuzz_pyconv)
LIBS_fuzz_keys      := $(shell pkg-config --libs libcjson libsodium)
LIBS_fuzz_config    :=

# Longest input libFuzzer makes: past HEAD_MAX (8 KiB) for the HTTP reader.
MAXLEN_fuzz_http      := 20000
MAXLEN_fuzz_json_body := 16384
MAXLEN_fuzz_pyconv    := 16384
MAXLEN_fuzz_pyresult  := 4096
MAXLEN_fuzz_keys      := 16384
MAXLEN_fuzz_config    := 8192

# Extra libFuzzer flags per harness.  fuzz_py*: Python's free lists make
# most inputs look like leaks (more mallocs than frees), and libFuzzer's
# per-input leak check then scans the whole heap each time (5x slower); leaks
# are still caught by LeakSanitizer when the run ends, failing it.
OPTS_fuzz_http        :=
OPTS_fuzz_json_body   :=
OPTS_fuzz_pyconv      := -detect_leaks=0
OPTS_fuzz_pyresult    := -detect_leaks=0
OPTS_fuzz_keys        :=
OPTS_fuzz_config      :=

# Sanitizer behaviour for run and regress (libFuzzer adds its own defaults).
SAN_ENV := ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1:strict_string_checks=1 \
           UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
RUN_FLAGS := -timeout=10 -rss_limit_mb=2048 -print_final_stats=1

BINS := $(addprefix $(OUT)/,$(HARNESSES))

build: $(BINS)

$(OBJ)/src_%.o: $(SRC)/%.c $(wildcard $(SRC)/*.h)
	@mkdir -p $(OBJ)
	$(FUZZ_CC) $(CFLAGS_FUZZ) -c -o $@ $<

$(OBJ)/%.o: $(FUZZ_DIR)/%.c $(wildcard $(SRC)/*.h) $(wildcard $(FUZZ_DIR)/*.h)
	@mkdir -p $(OBJ)
	$(FUZZ_CC) $(CFLAGS_FUZZ) $(WARN) -c -o $@ $<

define LINK_RULE
$(OUT)/$(1): $(OBJ)/$(1).o $(addprefix $(OBJ)/src_,$(SRCS_$(1):.c=.o))
	$$(FUZZ_CC) $$(SAN) -o $$@ $$^ $$(LIBS_$(1))
endef
$(foreach h,$(HARNESSES),$(eval $(call LINK_RULE,$(h))))

# Fuzz each harness for FUZZ_SECONDS on build-fuzz/corpus/<harness>: the seeds
# are copied there first and new inputs accumulate there across runs; nothing
# is ever written under tests/fuzz/.  Findings go to build-fuzz/artifacts/.
run: $(addprefix $(OUT)/,$(FUZZ_TARGETS))
	@rc=0; for h in $(FUZZ_TARGETS); do \
	  corpus=$(OUT)/corpus/$$h; art=$(OUT)/artifacts/$$h; log=$(OUT)/logs/$$h.log; \
	  mkdir -p $$corpus $$art $(OUT)/logs; \
	  cp $(FUZZ_DIR)/corpus/$$h/* $$corpus/; \
	  dict=; [ -f $(FUZZ_DIR)/dict/$$h.dict ] && dict=-dict=$(FUZZ_DIR)/dict/$$h.dict; \
	  case $$h in \
	    fuzz_http) opts="-max_len=$(MAXLEN_fuzz_http) $(OPTS_fuzz_http)";; \
	    fuzz_json_body) opts="-max_len=$(MAXLEN_fuzz_json_body) $(OPTS_fuzz_json_body)";; \
	    fuzz_pyconv) opts="-max_len=$(MAXLEN_fuzz_pyconv) $(OPTS_fuzz_pyconv)";; \
	    fuzz_pyresult) opts="-max_len=$(MAXLEN_fuzz_pyresult) $(OPTS_fuzz_pyresult)";; \
	    fuzz_keys) opts="-max_len=$(MAXLEN_fuzz_keys) $(OPTS_fuzz_keys)";; \
	    fuzz_config) opts="-max_len=$(MAXLEN_fuzz_config) $(OPTS_fuzz_config)";; esac; \
	  echo "== $$h: fuzzing for $(FUZZ_SECONDS) s (log: $$log)"; \
	  $(SAN_ENV) $(OUT)/$$h $$corpus $(RUN_FLAGS) -max_total_time=$(FUZZ_SECONDS) \
	    $$opts $$dict -artifact_prefix=$$art/ $(FUZZ_FLAGS) >$$log 2>&1; \
	  status=$$?; \
	  grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)' $$log | sed 's/^/   /'; \
	  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' $$log | sed 's/^/   /'; \
	  if [ $$status -ne 0 ]; then \
	    rc=1; echo "!! $$h FAILED (exit $$status); findings in $$art/:"; ls -1 $$art | sed 's/^/   /'; \
	    grep -E -m1 -A12 'ERROR: |runtime error|check failed' $$log | sed 's/^/   /'; \
	  fi; \
	done; exit $$rc

# Every seed and every regression input once, without fuzzing: quick, for
# `make test`.  Exit status non-zero when any input crashes or fails a check.
regress: $(addprefix $(OUT)/,$(FUZZ_TARGETS))
	@rc=0; total=0; for h in $(FUZZ_TARGETS); do \
	  dirs=$(FUZZ_DIR)/corpus/$$h; \
	  [ -d $(FUZZ_DIR)/regressions/$$h ] && dirs="$$dirs $(FUZZ_DIR)/regressions/$$h"; \
	  n=$$(find $$dirs -type f 2>/dev/null | wc -l); total=$$((total + n)); \
	  if [ $$n -eq 0 ]; then rc=1; echo "fuzz-regress: $$h FAILED: no inputs in $$dirs"; continue; fi; \
	  log=$(OUT)/logs/$$h.regress.log; art=$(OUT)/artifacts/regress-$$h; mkdir -p $(OUT)/logs $$art; \
	  if find $$dirs -type f -print0 | sort -z | \
	       $(SAN_ENV) xargs -0 -r $(OUT)/$$h -timeout=10 -rss_limit_mb=2048 \
	         -artifact_prefix=$$art/ >$$log 2>&1; then \
	    echo "fuzz-regress: $$h ok ($$n inputs)"; \
	  else \
	    rc=1; echo "fuzz-regress: $$h FAILED (log: $$log)"; \
	    grep -E 'Running: ' $$log | tail -n 1 | sed 's/^/   /'; \
	    grep -E -m1 -A15 'ERROR: |runtime error|check failed' $$log | sed 's/^/   /'; \
	  fi; \
	done; \
	if [ $$rc -eq 0 ]; then echo "fuzz-regress: all harnesses ok over $$total inputs"; \
	else echo "fuzz-regress: FAILED"; fi; exit $$rc

# Line coverage of src/ reached by the corpora (seeds + what run found):
# the harnesses rebuilt with clang's source-based coverage, no sanitizers,
# each input run once, then llvm-cov's per-file report.
LLVM_PROFDATA ?= llvm-profdata
LLVM_COV      ?= llvm-cov
COV      := $(OUT)/cov
COVFLAGS := -std=c11 -D_GNU_SOURCE -g -O0 -fsanitize=fuzzer -fprofile-instr-generate \
            -fcoverage-mapping -I$(SRC) -I$(ROOT)/build \
            $(shell pkg-config --cflags python3-embed libcjson libsodium)

define COV_RULE
$(COV)/$(1): $(FUZZ_DIR)/$(1).c $(addprefix $(SRC)/,$(SRCS_$(1))) $(wildcard $(SRC)/*.h)
	@mkdir -p $(COV)
	$$(FUZZ_CC) $$(COVFLAGS) -o $$@ $(FUZZ_DIR)/$(1).c $(addprefix $(SRC)/,$(SRCS_$(1))) $$(LIBS_$(1))
endef
$(foreach h,$(HARNESSES),$(eval $(call COV_RULE,$(h))))

coverage: $(addprefix $(COV)/,$(FUZZ_TARGETS))
	@mkdir -p $(OUT)/logs; for h in $(FUZZ_TARGETS); do \
	  rm -f $(COV)/$$h.*.profraw; \
	  dirs=$(FUZZ_DIR)/corpus/$$h; \
	  [ -d $(OUT)/corpus/$$h ] && dirs="$$dirs $(OUT)/corpus/$$h"; \
	  [ -d $(FUZZ_DIR)/regressions/$$h ] && dirs="$$dirs $(FUZZ_DIR)/regressions/$$h"; \
	  find $$dirs -type f -print0 | LLVM_PROFILE_FILE=$(COV)/$$h.%p.profraw \
	    xargs -0 -r $(COV)/$$h -timeout=10 -rss_limit_mb=2048 -artifact_prefix=$(COV)/ \
	    >$(OUT)/logs/$$h.cov.log 2>&1; \
	  $(LLVM_PROFDATA) merge -sparse -o $(COV)/$$h.profdata $(COV)/$$h.*.profraw && \
	  echo "== $$h" && \
	  $(LLVM_COV) report $(COV)/$$h -instr-profile=$(COV)/$$h.profdata $(SRC) 2>/dev/null | \
	    awk 'NF == 13 && $$2 ~ /^[0-9]+$$/ { printf "   %-12s lines %5s/%-5s %8s   branches %4s/%-4s %8s\n", \
	         $$1, $$8 - $$9, $$8, $$10, $$11 - $$12, $$11, $$13 }'; \
	done

clean:
	rm -rf $(OUT)

.PHONY: build run regress coverage clean
.PRECIOUS: $(OBJ)/%.o $(OBJ)/src_%.o
