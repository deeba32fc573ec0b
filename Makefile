# cairn: build, test, demo and bench.  `make deps` installs what all of them need.
CC      ?= cc
PKGS    := libcrypto libzstd jansson libxxhash lmdb libcurl
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS  ?= -O2 -g
WARN    := -Wall -Wextra -Wno-unused-parameter -Wshadow -Wstrict-prototypes -Wformat=2
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE -pthread $(WARN) -Iinclude $(PKG_CFLAGS)
LDLIBS  := $(PKG_LIBS) -pthread -lm
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

LIB_SRCS   := $(sort $(shell find repo-format -name '*.c'))
AGENT_SRCS := $(sort $(shell find agent -name '*.c'))
UNIT_SRCS  := $(sort $(wildcard tests/unit/test_*.c))
UNIT_HELP  := $(filter-out $(UNIT_SRCS),$(wildcard tests/unit/*.c))

LIB_OBJS   := $(LIB_SRCS:%.c=build/%.o)
AGENT_OBJS := $(AGENT_SRCS:%.c=build/%.o)
UNIT_BINS  := $(UNIT_SRCS:tests/unit/%.c=build/unit/%)
SAN_LIB_OBJS := $(LIB_SRCS:%.c=build-san/%.o)
SAN_UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=build-san/unit/%)

.PHONY: all deps test unit unit-san integration demo bench-rss bench-s3 clean
all: cairn

build/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@
build-san/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) -O1 -g $(SAN) -MMD -MP -c $< -o $@

build/libcairn.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^
build-san/libcairn.a: $(SAN_LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

cairn: $(AGENT_OBJS) build/libcairn.a
	$(CC) $(CFLAGS) -o $@ $(AGENT_OBJS) build/libcairn.a $(LDLIBS)

build/unit/%: tests/unit/%.c $(UNIT_HELP) build/libcairn.a
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -Itests/unit -o $@ $< $(UNIT_HELP) build/libcairn.a $(LDLIBS)
build-san/unit/%: tests/unit/%.c $(UNIT_HELP) build-san/libcairn.a
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) -O1 -g $(SAN) -Itests/unit -o $@ $< $(UNIT_HELP) build-san/libcairn.a $(LDLIBS)

# Unit tests, then the same under ASan+UBSan, then the integration tests that
# drive ./cairn against the real restic (and, later, real servers).
NPROC := $(shell nproc 2>/dev/null || echo 2)
test: cairn
	@$(MAKE) --no-print-directory -j$(NPROC) $(UNIT_BINS) $(SAN_UNIT_BINS) >/dev/null
	@$(MAKE) --no-print-directory unit unit-san integration

unit: $(UNIT_BINS)
	@tests/unit/run.sh $(UNIT_BINS)
unit-san: $(SAN_UNIT_BINS)
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		tests/unit/run.sh $(SAN_UNIT_BINS)
integration: cairn
	@tests/cli/run.sh

# Debian packages for building, testing and benchmarking (run as root).
# rclone serves restic's REST protocol to the tests (rclone serve restic).
DEB_PKGS := build-essential pkg-config libssl-dev libzstd-dev libjansson-dev libxxhash-dev \
	liblmdb-dev libcurl4-openssl-dev restic attr acl zstd python3 curl rclone
deps:
	@if [ "$$(id -u)" != 0 ]; then echo "make deps: run as root (apt-get)" >&2; exit 1; fi
	DEBIAN_FRONTEND=noninteractive apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(DEB_PKGS)
	@# node + npm run the tests' S3 server (s3rver, tests/infra).  A node from
	@# nodesource conflicts with Debian's npm: install Debian's only when absent.
	@if ! command -v node >/dev/null 2>&1; then \
		echo "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nodejs npm"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nodejs npm; \
	elif ! command -v npm >/dev/null 2>&1; then \
		echo "make deps: node is installed but npm is not: install npm from node's own source" >&2; \
	fi

# The main job, end to end: build, init a local repository under ./demo,
# back up a sample folder twice, list, restore the latest, compare.
demo:
	@pkg-config --exists $(PKGS) && command -v restic >/dev/null || $(MAKE) deps
	@$(MAKE) --no-print-directory cairn
	@tests/demo.sh

# Peak RSS of a backup of one 4 GiB file, cairn beside restic (issue #2 point 7).
bench-rss: cairn
	@bench/backup_rss.sh $(BENCH_SIZE_MIB)

# A backup to S3 (s3rver with strict SigV4 on 127.0.0.1) beside the same
# backup to a local folder, about 500 MB of mixed data (issue #4 point 3).
bench-s3: cairn build/bench/gencorpus
	@bench/s3_vs_local.sh $(BENCH_S3_MIB)

clean:
	rm -rf build build-san cairn

-include $(LIB_OBJS:.o=.d) $(AGENT_OBJS:.o=.d) $(SAN_LIB_OBJS:.o=.d)

# libFuzzer harnesses for the parsers of untrusted input (tests/fuzz/README.md).
# Optional, for developers, not part of `make test` or `make deps`: needs clang
# and its fuzzer runtime (Debian 12: apt-get install clang; libclang-rt-14-dev).
# Builds the library once more with coverage and ASan+UBSan into build/fuzz/,
# one binary per harness, and a seed corpus per harness in build/fuzz/corpus/.
FUZZ_CC       ?= clang
FUZZ_FLAGS    := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_SRCS     := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS     := $(FUZZ_SRCS:tests/fuzz/%.c=build/fuzz/%)
FUZZ_LIB_OBJS := $(LIB_SRCS:%.c=build/fuzz/obj/%.o)
# clang (not gcc) flags repo-format/util/error.c: its gcc-only pragma and its
# vsnprintf wrapper; the library is checked warning-free by the gcc build.
FUZZ_LIB_WNO  := -Wno-unknown-warning-option -Wno-format-nonliteral

.PHONY: fuzz
fuzz: $(FUZZ_BINS) build/fuzz/make_seeds
	@build/fuzz/make_seeds build/fuzz/corpus
	@echo "fuzzers: $(FUZZ_BINS)"
	@echo "run one: build/fuzz/fuzz_tree build/fuzz/corpus/tree -max_total_time=60"

build/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(BASE_CFLAGS) $(FUZZ_FLAGS) $(FUZZ_LIB_WNO) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@
build/fuzz/libcairn.a: $(FUZZ_LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^
build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c build/fuzz/libcairn.a
	$(FUZZ_CC) $(BASE_CFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ $< build/fuzz/libcairn.a $(LDLIBS)
build/fuzz/make_seeds: tests/fuzz/make_seeds.c build/fuzz/libcairn.a
	$(FUZZ_CC) $(BASE_CFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -o $@ $< build/fuzz/libcairn.a $(LDLIBS)

-include $(FUZZ_LIB_OBJS:.o=.d)

# Benchmarks (issue 3 item 7; bench/README.md): cairn beside restic and borg
# on generated corpora, same run, one table per scenario, bench/out/results.json.
# Not part of `make test` or CI.  bench-quick: under 2 minutes once the corpora
# and the 2,000,000-blob repository are generated (the first run adds about
# 30 s); bench: about 15-30 minutes.  Data under $(BENCH_DIR) (/tmp/cairn-bench).
.PHONY: bench bench-quick bench-deps
BENCH_BINS := build/bench/gencorpus build/bench/fill_repo
build/bench/gencorpus: bench/gencorpus.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -o $@ $< $(shell pkg-config --libs libcrypto 2>/dev/null || echo -lcrypto) -lm
build/bench/fill_repo: bench/fill_repo.c build/libcairn.a
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -o $@ $< build/libcairn.a $(LDLIBS)
bench: cairn $(BENCH_BINS)
	@bench/run.sh full
bench-quick: cairn $(BENCH_BINS)
	@bench/run.sh quick
# borg and GNU time for the benchmarks, beside `make deps` (run as root).
bench-deps:
	@if [ "$$(id -u)" != 0 ]; then echo "make bench-deps: run as root (apt-get)" >&2; exit 1; fi
	DEBIAN_FRONTEND=noninteractive apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends borgbackup time restic python3
