# Benchmarks (bench/): hartalloc against the allocators kernel developers
# use today.  Not part of `make test`, which only runs bench-smoke.
#
#   make bench        every workload, full length (about 10 minutes on 2
#                     cores): tables on stdout, CSVs, PNG charts and
#                     SUMMARY.md in bench/results/; first the Rust kernel's
#                     benchmark mode in QEMU against buddy_system_allocator
#                     and talc (make bench-qemu, bench/results/qemu.md);
#                     last the instruction counts under callgrind
#                     (bench/icount.py, bench/results/icount.md)
#   make bench-build  just build the two harnesses
#
# Two harnesses, each one process, each trial in a forked child:
#   build/bench/target/release/hartalloc-bench  Rust: hartalloc's crate and
#       the no_std peers (talc, rlsf, buddy_system_allocator,
#       linked_list_allocator, ArceOS's axallocator; rCore's frame and
#       bitmap page allocators), all over the same 128 MiB arena
#   build/bench/cbench  C: hartalloc's C API, glibc, jemalloc, mimalloc
# Both at -O2 (release profile opt-level 2; the C core in both is -O2).

BENCH_DIR   := $(TOP)/bench
BENCH_OUT   := $(BUILD)/bench
BENCH_RES   := $(BENCH_DIR)/results
BENCH_RUST  := $(BENCH_OUT)/target/release/hartalloc-bench
BENCH_C     := $(BENCH_OUT)/cbench
BENCH_JE    := $(BENCH_OUT)/libjemalloc_bench.a
BENCH_VENV  := $(BUILD)/bench-venv
BENCH_PY    := $(BENCH_VENV)/bin/python
# Instruction counts: operations per workload under callgrind (exact, so a
# few thousand are enough; the smoke's only prove the harness works).
ICOUNT_OPS  := 20000
ICOUNT_SMOKE_OPS := 500
BENCH_ICOUNT = python3 $(BENCH_DIR)/icount.py --c $(BENCH_C) --rust $(BENCH_RUST)

.PHONY: bench bench-build bench-setup bench-smoke bench-venv

bench-setup:
	@$(SETUP) host
	@$(BENCH_DIR)/setup.sh

# cargo decides what to rebuild; the bench crate is its own workspace.
bench-build: bench-setup
	@mkdir -p $(BENCH_OUT)
	@cd $(BENCH_DIR)/rust && CARGO_TARGET_DIR=$(BENCH_OUT)/target cargo build --release -j2 --quiet
	@$(MAKE) --no-print-directory $(BENCH_C)

$(BENCH_JE): $(BENCH_DIR)/c/jemalloc-prefixed.sh
	@$(BENCH_DIR)/c/jemalloc-prefixed.sh $@

$(BENCH_C): $(BENCH_DIR)/c/cbench.c $(BUILD)/host/plain/libhartalloc.a $(BENCH_JE)
	@mkdir -p $(@D); echo "  CC $@"
	@$(HOST_CC) -std=gnu11 -O2 -g -Wall -Wextra -Werror -Ic-alloc/include $< \
	    $(BUILD)/host/plain/libhartalloc.a $(BENCH_JE) -ldl -lpthread -lm -o $@

$(BENCH_PY):
	@python3 -m venv $(BENCH_VENV)
	@$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check matplotlib

bench-venv: bench-setup $(BENCH_PY)

bench: bench-build bench-venv
	@$(MAKE) --no-print-directory bench-qemu
	@start=$$(date +%s); \
	$(BENCH_RUST) --out $(BENCH_OUT)/rust-raw.csv && \
	$(BENCH_C) --out $(BENCH_OUT)/c-raw.csv && \
	mkdir -p $(BENCH_RES) && \
	$(BENCH_ICOUNT) --ops $(ICOUNT_OPS) --out $(BENCH_RES) && \
	$(BENCH_PY) $(BENCH_DIR)/report.py --raw $(BENCH_OUT)/rust-raw.csv $(BENCH_OUT)/c-raw.csv \
	    --out $(BENCH_RES) --elapsed "$$(( $$(date +%s) - start )) s" && \
	cp $(BENCH_OUT)/rust-raw.csv $(BENCH_OUT)/c-raw.csv $(BENCH_RES)/ && \
	echo "bench: $$(( $$(date +%s) - start )) s; results in bench/results/ (SUMMARY.md, *.csv, *.png)"

# The smoke: both harnesses with tiny windows and few trials (seconds),
# the instruction counts on a few hundred operations, every allocator and
# workload must produce sane figures, and the report must build its tables
# (no charts: no PyPI in a test step).
bench-smoke: bench-build
	@rm -rf $(BENCH_OUT)/smoke; mkdir -p $(BENCH_OUT)/smoke
	$(BENCH_RUST) --quick --out $(BENCH_OUT)/smoke/rust-raw.csv
	$(BENCH_C) --quick --out $(BENCH_OUT)/smoke/c-raw.csv
	$(BENCH_ICOUNT) --ops $(ICOUNT_SMOKE_OPS) --check --out $(BENCH_OUT)/smoke
	python3 $(BENCH_DIR)/report.py --check --raw $(BENCH_OUT)/smoke/rust-raw.csv $(BENCH_OUT)/smoke/c-raw.csv --out $(BENCH_OUT)/smoke
	python3 $(BENCH_DIR)/report.py --no-plots --raw $(BENCH_OUT)/smoke/rust-raw.csv $(BENCH_OUT)/smoke/c-raw.csv \
	    --out $(BENCH_OUT)/smoke >/dev/null
	test -s $(BENCH_OUT)/smoke/SUMMARY.md
	grep -q 'Instructions per operation' $(BENCH_OUT)/smoke/SUMMARY.md
	! nm $(BENCH_C) | grep -E ' [TW] (malloc|free|realloc)$$'

test-bench:
	@$(CHECK) bench-smoke $(MAKE) --no-print-directory bench-smoke

.PHONY: test-bench
TEST_STEPS += test-bench
