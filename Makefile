# Gannet build entry points. The real build is meson/ninja; this file wraps it.
#   make          build build/gannet
#   make run      install missing packages, build, initialise ./var, run on loopback ports
#   make check    install missing packages, build with ASan/UBSan, run every test
#   make fuzz     build the libFuzzer targets (clang) into build-fuzz/ and run each briefly
PYTHON := /usr/bin/python3
SOURCES_LIST = find src tests/unit tests/fuzz -name '*.c' 2>/dev/null | LC_ALL=C sort

.PHONY: all run check fuzz deps clean FORCE

all: build/gannet

deps:
	@tools/install-deps

# Reconfigure a build dir when the list of .c files changed (meson.build lists the tree).
build/.sources build-check/.sources build-fuzz/.sources: FORCE
	@mkdir -p $(@D)
	@$(SOURCES_LIST) > $@.new
	@if ! cmp -s $@.new $@; then mv $@.new $@; else rm -f $@.new; fi

build/.configured: build/.sources
	@if [ -f build/build.ninja ]; then meson setup --reconfigure build >/dev/null; \
	 else meson setup build >/dev/null; fi
	@touch $@

build/gannet: build/.configured FORCE
	@ninja -C build

build-check/.configured: build-check/.sources
	@if [ -f build-check/build.ninja ]; then meson setup --reconfigure build-check >/dev/null; \
	 else meson setup build-check -Db_sanitize=address,undefined -Db_lundef=false >/dev/null; fi
	@touch $@

build-fuzz/.configured: build-fuzz/.sources
	@if [ -f build-fuzz/build.ninja ]; then meson setup --reconfigure build-fuzz >/dev/null; \
	 else CC=clang meson setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false \
	   -Dc_args=-fsanitize=fuzzer-no-link >/dev/null; fi
	@touch $@

run: deps build/gannet
	@build/gannet -c var/gannet.conf init --demo
	exec build/gannet -c var/gannet.conf serve

check: deps build-check/.configured
	@ninja -C build-check
	@GANNET_BIN=$(CURDIR)/build-check/gannet GANNET_BUILD=$(CURDIR)/build-check \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(PYTHON) -m pytest -q -p no:cacheprovider tests

FUZZ_SECONDS ?= 60
fuzz: build-fuzz/.configured
	@ninja -C build-fuzz
	@for f in build-fuzz/fuzz_*; do [ -f "$$f" ] && [ -x "$$f" ] || continue; n=$$(basename $$f); \
	  mkdir -p fuzz-corpus/$$n tests/fuzz/seeds/$$n; echo "== $$n ($(FUZZ_SECONDS)s)"; \
	  if ! $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 fuzz-corpus/$$n tests/fuzz/seeds/$$n \
	      > build-fuzz/$$n.log 2>&1; then tail -40 build-fuzz/$$n.log; exit 1; fi; \
	  grep -E "stat::number_of_executed_units|stat::new_units_added|cov:" build-fuzz/$$n.log | tail -3; done

clean:
	rm -rf build build-check build-fuzz
FORCE:

# make bench: Gannet vs Postfix on this machine (needs root; never part of check/CI); see bench/README.md
.PHONY: bench
bench:
	@bench/run
