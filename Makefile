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

.PHONY: all deps test unit unit-san integration demo bench-rss clean
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
test: cairn
	@$(MAKE) --no-print-directory unit unit-san integration

unit: $(UNIT_BINS)
	@tests/unit/run.sh $(UNIT_BINS)
unit-san: $(SAN_UNIT_BINS)
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		tests/unit/run.sh $(SAN_UNIT_BINS)
integration: cairn
	@tests/cli/run.sh

# Debian packages for building, testing and benchmarking (run as root).
DEB_PKGS := build-essential pkg-config libssl-dev libzstd-dev libjansson-dev libxxhash-dev \
	liblmdb-dev libcurl4-openssl-dev restic attr acl zstd python3 curl
deps:
	@if [ "$$(id -u)" != 0 ]; then echo "make deps: run as root (apt-get)" >&2; exit 1; fi
	DEBIAN_FRONTEND=noninteractive apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(DEB_PKGS)

# The main job, end to end: build, init a local repository under ./demo,
# back up a sample folder twice, list, restore the latest, compare.
demo:
	@pkg-config --exists $(PKGS) && command -v restic >/dev/null || $(MAKE) deps
	@$(MAKE) --no-print-directory cairn
	@tests/demo.sh

# Peak RSS of a backup of one 4 GiB file, cairn beside restic (issue #2 point 7).
bench-rss: cairn
	@bench/backup_rss.sh $(BENCH_SIZE_MIB)

clean:
	rm -rf build build-san cairn

-include $(LIB_OBJS:.o=.d) $(AGENT_OBJS:.o=.d) $(SAN_LIB_OBJS:.o=.d)
