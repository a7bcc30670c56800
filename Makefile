# chatd — build, run, test. One Makefile; pkg-config for every library.
#
#   make run     install what is missing, start a private MariaDB under var/,
#                build and serve on http://127.0.0.1:8080 (Ctrl-C stops both)
#   make test    install what is missing, then scripts/test.sh: the layer
#                check, unit tests (cmocka), `make tsan`, OpenAPI lint, API
#                tests (pytest) against a sanitizer build and a throwaway
#                MariaDB, nginx.conf's tests, browser tests
#   make tsan    unit tests and an API subset under ThreadSanitizer
#   make         build build/chatd (installs nothing: `make run`, `make test`
#                or scripts/deps.sh do)
#   make check-layers   the include rule between the layers of src/
#   make format         clang-format the C sources in place (.clang-format)
#   make format-check   list the C files that are not formatted; exit 1 if any
#   make check-commits BASE=<rev>   commit messages since BASE: subject
#                <= 72 characters, a blank line, a body
#   make cluster 3 Galera nodes, Redis, 3 chatd nodes and nginx under
#                var/cluster/ (scripts/cluster.sh; Ctrl-C stops them all)
#   make test-cluster   the cluster tests (tests/cluster) on their own
#   make clean

PKGS     = libmicrohttpd libmariadb jansson libsodium libcurl libcrypto hiredis libmagic libexif
WARN     = -Wall -Wextra -Wshadow -Wmissing-prototypes -Wpedantic
CFLAGS_B = -std=gnu11 $(WARN) -Isrc -Ihandlers -pthread -MMD -MP $(shell pkg-config --cflags $(PKGS))
LIBS     = $(shell pkg-config --libs $(PKGS)) -lcrack -pthread # cracklib has no .pc
REL      = -O2 -g
ASAN     = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
TSAN     = -O1 -g -fno-omit-frame-pointer -fsanitize=thread
# The test builds (sanitizers, unit tests) make every warning an error; the
# release build does not, so that a newer compiler's new warning can never
# stop `make run` or `make` on a newcomer's machine.
WERROR   = -Werror

SRC      = $(wildcard src/*.c src/*/*.c handlers/*.c)
# Two programs: chatd (src/main.c) and the operator's chatctl (src/chatctl.c),
# each linked with everything else.
LIB_SRC  = $(filter-out src/main.c src/chatctl.c,$(SRC))
UNIT     = $(wildcard tests/unit/test_*.c)

REL_LIB  = $(LIB_SRC:%.c=build/rel/%.o)
REL_OBJ  = $(REL_LIB) build/rel/src/main.o
ASAN_OBJ = $(ASAN_LIB) build/asan/src/main.o
ASAN_LIB = $(LIB_SRC:%.c=build/asan/%.o)
UNIT_BIN = $(UNIT:tests/unit/%.c=build/unit/%)
TSAN_OBJ = $(TSAN_LIB) build/tsan/src/main.o
TSAN_LIB = $(LIB_SRC:%.c=build/tsan/%.o)
UNIT_TSAN = $(UNIT:tests/unit/%.c=build/unit-tsan/%)

# Sub-makes of the targets that install first: they start after
# scripts/deps.sh, so pkg-config and the libraries are there when they build.
SUBMAKE  = $(MAKE) --no-print-directory

.PHONY: all run test unit tsan deps deps-test clean lint-openapi run-nginx test-nginx test-e2e demo \
        check-layers format format-check check-commits cluster test-cluster
all: build/chatd build/chatctl

# Installing is the job of the targets that run something (run, test, tsan,
# test-e2e, bench, demo, run-nginx, format); building never installs.
deps:
	@scripts/deps.sh run
deps-test:
	@scripts/deps.sh test

build/rel/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_B) $(REL) -c $< -o $@
build/asan/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_B) $(ASAN) $(WERROR) -c $< -o $@
build/tsan/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_B) $(TSAN) $(WERROR) -c $< -o $@

build/chatd: $(REL_OBJ)
	$(CC) $(REL) $^ $(LIBS) -o $@
build/chatd-asan: $(ASAN_OBJ)
	$(CC) $(ASAN) $^ $(LIBS) -o $@
build/chatctl: $(REL_LIB) build/rel/src/chatctl.o
	$(CC) $(REL) $^ $(LIBS) -o $@
build/chatctl-asan: $(ASAN_LIB) build/asan/src/chatctl.o
	$(CC) $(ASAN) $^ $(LIBS) -o $@
build/chatd-tsan: $(TSAN_OBJ)
	$(CC) $(TSAN) $^ $(LIBS) -o $@
build/unit/%: tests/unit/%.c $(ASAN_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_B) $(ASAN) $(WERROR) $< $(ASAN_LIB) $(LIBS) $(shell pkg-config --libs cmocka) -o $@
build/unit-tsan/%: tests/unit/%.c $(TSAN_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_B) $(TSAN) $(WERROR) $< $(TSAN_LIB) $(LIBS) $(shell pkg-config --libs cmocka) -o $@

run:
	@scripts/deps.sh run
	@$(SUBMAKE) build/chatd
	@scripts/run.sh

unit: $(UNIT_BIN)
	@for t in $(UNIT_BIN); do $$t || exit 1; done

lint-openapi: deps-test
	@scripts/lint-openapi.sh

test:
	@scripts/deps.sh test
	@$(SUBMAKE) build/chatd-asan build/chatctl-asan $(UNIT_BIN)
	@scripts/test.sh $(UNIT_BIN)

# ThreadSanitizer (scripts/tsan.sh): build/chatd-tsan and the unit tests
# under -fsanitize=thread, objects in build/tsan/; runs the unit tests, then
# a short concurrency subset of the API tests against build/chatd-tsan.
tsan:
	@scripts/deps.sh test
	@$(SUBMAKE) build/chatd-tsan $(UNIT_TSAN)
	@scripts/tsan.sh $(UNIT_TSAN)

check-layers:
	@scripts/check-layers.sh

format:
	@scripts/deps.sh format
	@scripts/format.sh fix
format-check:
	@scripts/deps.sh format
	@scripts/format.sh check

check-commits:
	@scripts/check-commits.sh $(BASE)

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)

# --- benchmark (bench/, docs/BENCHMARKS.md) ---------------------------------
#   make bench        short run (≤ 5 min): every scenario at reduced size
#   make bench-long   the full scenarios
BENCH_PKGS = jansson libmariadb libsodium libmicrohttpd
build/loadgen: $(wildcard bench/*.c) $(wildcard bench/*.h)
	@mkdir -p build
	$(CC) -std=gnu11 -O2 -g -Wall -Wextra -Wpedantic $(shell pkg-config --cflags $(BENCH_PKGS)) \
	  $(filter %.c,$^) $(shell pkg-config --libs $(BENCH_PKGS)) -pthread -o $@
.PHONY: bench bench-long
bench:
	@scripts/deps.sh bench
	@$(SUBMAKE) build/chatd build/loadgen
	@bench/run.sh short
bench-long:
	@scripts/deps.sh bench
	@$(SUBMAKE) build/chatd build/loadgen
	@bench/run.sh long

# nginx with nginx.conf in front of a running `make run`: HTTPS on
# 127.0.0.1:8443 with a self-signed certificate (made once in var/tls), and
# http://127.0.0.1:8081 redirecting to it (scripts/run-nginx.sh;
# NGINX_LISTEN, NGINX_HTTP_LISTEN, CHATD_UPSTREAM to change the ports).
run-nginx: deps
	@scripts/run-nginx.sh

# nginx.conf's own tests (TLS, redirect, headers, limits, its problem+json
# answers) in front of a stub upstream: no chatd, no database.
test-nginx:
	@scripts/deps.sh test
	@/usr/bin/python3 -m pytest -q -p no:cacheprovider tests/nginx

# The browser tests alone: headless Chromium through nginx (tests/e2e/run.sh).
test-e2e:
	@scripts/deps.sh test
	@$(SUBMAKE) build/chatd
	@tests/e2e/run.sh

# Replay the #ubuntu IRC sample through a running `make run` (docs/demo.md;
# CHAT_URL, SPEED, DEMO_FILES as in scripts/demo.sh).
demo:
	@scripts/deps.sh demo
	@scripts/demo.sh

# The multi-node set-up on this machine (docs/scale-out.md): 3 Galera nodes,
# Redis, 3 chatd nodes and nginx under var/cluster/ (CLUSTER_DIR), in the
# foreground; prints the URL; Ctrl-C stops everything, the data stays.
cluster:
	@scripts/deps.sh run cluster
	@$(SUBMAKE) build/chatd
	@scripts/cluster.sh start

# Its tests (tests/cluster), each module on a cluster of its own in a temporary
# directory, against the sanitizer build unless CHATD_BIN says otherwise.
test-cluster:
	@scripts/deps.sh test
	@$(SUBMAKE) build/chatd-asan
	@CHATD_BIN=$${CHATD_BIN:-$(CURDIR)/build/chatd-asan} \
	  /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/cluster

# --- fuzzing (fuzz/, docs/fuzzing.md) ---------------------------------------
#   make fuzz         each fuzz/fuzz_<target>.c under libFuzzer (clang,
#                     ASan+UBSan) for FUZZ_SECONDS (60) on one core, its corpus
#                     in fuzz/corpus/<target>/ (new inputs merged back with
#                     -merge=1), crashes saved to fuzz/regressions/<target>/;
#                     FUZZ_TARGETS="jsonv router" picks some
#   make fuzz-replay  every corpus and regression input once, through the same
#                     targets built with gcc + ASan/UBSan and fuzz/replay.c
#                     (part of make test; needs no clang)
FUZZ_TARGETS ?= $(patsubst fuzz/fuzz_%.c,%,$(wildcard fuzz/fuzz_*.c))
FUZZ_SECONDS ?= 60
FUZZ_CC   = clang
FUZZ_SAN  = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_OBJ  = $(LIB_SRC:%.c=build/fuzz/%.o)
build/fuzz/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CFLAGS_B) $(FUZZ_SAN) -fsanitize=fuzzer-no-link $(WERROR) -c $< -o $@
build/fuzz/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz.h $(FUZZ_OBJ)
	$(FUZZ_CC) $(CFLAGS_B) -Ifuzz $(FUZZ_SAN) -fsanitize=fuzzer $(WERROR) $< $(FUZZ_OBJ) $(LIBS) -o $@
build/fuzz-replay/fuzz_%: fuzz/fuzz_%.c fuzz/replay.c fuzz/fuzz.h $(ASAN_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_B) -Ifuzz $(ASAN) $(WERROR) $< fuzz/replay.c $(ASAN_LIB) $(LIBS) -o $@
.PHONY: fuzz fuzz-replay
fuzz:
	@scripts/deps.sh fuzz
	@$(SUBMAKE) $(FUZZ_TARGETS:%=build/fuzz/fuzz_%)
	@scripts/fuzz.sh run $(FUZZ_SECONDS) $(FUZZ_TARGETS)
fuzz-replay:
	@$(SUBMAKE) $(FUZZ_TARGETS:%=build/fuzz-replay/fuzz_%)
	@scripts/fuzz.sh replay $(FUZZ_TARGETS)
