# The Rust crate at the repository root (Cargo.toml, build.rs, rust-shim/)
# and the two generated files that tie it to the C header: the cbindgen
# header of the hooks it exports, and the bindgen mirror of hartalloc.h.
#
#   make headers    regenerate c-alloc/include/hartalloc_hooks.h (cbindgen)
#                   and rust-shim/sys.rs (bindgen); commit both
#   make test-rust  the crate's test steps (part of make test)
#
# Host builds use the cargo on PATH (rustup's stable).  The riscv64 no_std
# build uses rustup's target when it is installed, else Debian's Rust with
# -Zbuild-std, in a target dir of its own so the two toolchains never share
# artifacts.

CARGO        ?= cargo
RUST_TARGET  := riscv64gc-unknown-none-elf
RUST_RV_DIR  := $(BUILD)/rust-riscv
HOOKS_H      := c-alloc/include/hartalloc_hooks.h
HOOKS_SRC    := rust-shim/platform.rs
HEADER_TU    := tests/header/check_hooks_header.c
CBINDGEN     := cbindgen --quiet --config cbindgen.toml

# rust-shim/sys.rs: the Rust mirror of hartalloc.h, by bindgen (Debian's,
# libclang at generation time only; users build from the committed file).
# Everything ha_*/HA_* except the platform hooks, which the crate defines.
# The header is parsed as a freestanding riscv64 target's, so that no libc
# header of the build machine takes part.
SYS_RS       := rust-shim/sys.rs
PUBLIC_H     := c-alloc/include/hartalloc.h
BINDGEN      := bindgen
BINDGEN_FLAGS := --use-core --ctypes-prefix core::ffi --size_t-is-usize \
    --no-layout-tests --no-doc-comments --no-prepend-enum-name --with-derive-default \
    --allowlist-function 'ha_.*' --allowlist-type 'ha_.*' --allowlist-var 'HA_.*' \
    --blocklist-function 'ha_platform_.*' \
    --raw-line '//! The raw C API of `c-alloc/include/hartalloc.h`, one to one: generated' \
    --raw-line '//! by bindgen from the header (`make headers`; do not edit).' \
    --raw-line '//!' \
    --raw-line '//! Everything the safe API does goes through these; they are public for' \
    --raw-line '//! kernels that need a call the safe API does not wrap (for example' \
    --raw-line '//! [`ha_free`] on a pointer that came from C code). The C header is the' \
    --raw-line '//! reference for what each function means. Constants keep the C types' \
    --raw-line '//! bindgen gives them (`HA_PAGE_SIZE` is a `u32`: the crate exports it' \
    --raw-line '//! as [`crate::PAGE_SIZE`], a `usize`).' \
    --raw-line '//!' \
    --raw-line '//! The platform hooks (`ha_platform_*`) are not declared here: this crate' \
    --raw-line '//! defines them (see [`crate::Platform`]).' \
    --raw-line '' \
    --raw-line '\#![allow(non_camel_case_types, non_upper_case_globals, missing_docs)]' \
    --raw-line '\#![allow(clippy::missing_safety_doc)]'
BINDGEN_CLANG := -ffreestanding --target=riscv64-unknown-elf

# The checked build's heap walk makes its run slow; a cap catches a hang.
RUST_TEST_TIMEOUT := 1500

.PHONY: headers test-rust rust-test-nightly rust-doc rust-doc-examples rust-build-riscv64 rust-header-fresh rust-sys-fresh rust-header-matches-c rust-package

headers:
	@$(SETUP) cbindgen bindgen
	$(CBINDGEN) --output $(HOOKS_H) $(HOOKS_SRC)
	$(BINDGEN) $(BINDGEN_FLAGS) --output $(SYS_RS) $(PUBLIC_H) -- $(BINDGEN_CLANG)

# The crate docs as users get them (default features) and as docs.rs
# builds them (its features and --cfg docsrs, nightly-only: RUSTC_BOOTSTRAP).
rust-doc:
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps
	RUSTC_BOOTSTRAP=1 RUSTDOCFLAGS="-D warnings --cfg docsrs" $(CARGO) doc --no-deps \
	    --features std,allocator-api2,critical-section --target-dir $(BUILD)/rust-docsrs

# The crate docs' code is files the build compiles: the README's copies
# must be exact, and the riscv64 kernel crate they show must build for
# riscv64 (rustup's target, else Debian's Rust with build-std, as its
# .cargo/config.toml says) and boot in QEMU to its last line.
EXAMPLE_RV     := $(TOP)/examples/riscv64-kernel
EXAMPLE_RV_DIR := $(BUILD)/example-riscv64
EXAMPLE_RV_ELF := $(RUST_TARGET)/release/hartalloc-example-riscv64

rust-doc-examples:
	@$(SETUP) riscv
	$(TOP)/scripts/check-doc-examples.sh rust-shim/README.md
	@if rustup target list --installed 2>/dev/null | grep -qx $(RUST_TARGET); then \
	    echo "rustup target $(RUST_TARGET)"; dir=$(EXAMPLE_RV_DIR)/rustup; \
	    (cd $(EXAMPLE_RV) && $(CARGO) build --release --target-dir $$dir) || exit 1; \
	else \
	    echo "Debian rustc with -Zbuild-std"; dir=$(EXAMPLE_RV_DIR); \
	    (cd $(EXAMPLE_RV) && RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 /usr/bin/cargo build --release \
	        --target-dir $$dir) || exit 1; \
	fi; \
	log=$$(mktemp); trap 'rm -f "$$log"' EXIT; \
	timeout 60 qemu-system-riscv64 -machine virt -nographic -bios default -m 128M \
	    -kernel $$dir/$(EXAMPLE_RV_ELF) </dev/null >$$log 2>&1; rc=$$?; \
	line=$$(grep -a 'after trim' $$log); \
	if [ $$rc -ne 0 ] || [ -z "$$line" ]; then tail -20 $$log; echo "example kernel: exit $$rc"; exit 1; fi; \
	echo "SHOW README kernel on QEMU: $$line"

# A rustup target if there is one, else Debian's toolchain with build-std.
rust-build-riscv64:
	@$(SETUP) riscv
	@if rustup target list --installed 2>/dev/null | grep -qx $(RUST_TARGET); then \
	    echo "rustup target $(RUST_TARGET)"; \
	    $(CARGO) build --target $(RUST_TARGET) --target-dir $(RUST_RV_DIR)/rustup; \
	else \
	    echo "Debian rustc with -Zbuild-std"; \
	    RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 /usr/bin/cargo build --target $(RUST_TARGET) \
	        -Zbuild-std=core,alloc -Zbuild-std-features=compiler-builtins-mem \
	        --target-dir $(RUST_RV_DIR); \
	fi
	@# The C core's objects must carry the double-float ABI of rustc's objects.
	@lib=$$(ls -t $(RUST_RV_DIR)/$(RUST_TARGET)/debug/build/hartalloc-*/out/libhartalloc.a \
	          $(RUST_RV_DIR)/rustup/$(RUST_TARGET)/debug/build/hartalloc-*/out/libhartalloc.a 2>/dev/null | head -1); \
	 test -n "$$lib" || { echo "no libhartalloc.a built for $(RUST_TARGET)"; exit 1; }; \
	 tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	 (cd $$tmp && riscv64-unknown-elf-ar x $$lib) || exit 1; \
	 n=0; for o in $$tmp/*.o; do \
	     riscv64-unknown-elf-readelf -h $$o | grep -q 'double-float ABI' || { echo "$$o: not lp64d"; exit 1; }; \
	     n=$$((n + 1)); \
	 done; test $$n -gt 0 || { echo "$$lib holds no objects"; exit 1; }; \
	 echo "SHOW C core in the riscv64 crate build: $$n objects, all lp64d"

# The committed header must be what cbindgen makes of the current source.
rust-header-fresh:
	@$(SETUP) cbindgen
	@tmp=$$(mktemp); $(CBINDGEN) --output $$tmp $(HOOKS_SRC) && \
	 if diff -u $(HOOKS_H) $$tmp; then rm -f $$tmp; else \
	     rm -f $$tmp; echo "$(HOOKS_H) is stale: run 'make headers' and commit it"; exit 1; fi

# The committed Rust mirror must be what bindgen makes of the current header.
rust-sys-fresh:
	@$(SETUP) bindgen
	@tmp=$$(mktemp --suffix=.rs); $(BINDGEN) $(BINDGEN_FLAGS) --output $$tmp $(PUBLIC_H) -- $(BINDGEN_CLANG) && \
	 if diff -u $(SYS_RS) $$tmp; then rm -f $$tmp; else \
	     rm -f $$tmp; echo "$(SYS_RS) is stale: run 'make headers' and commit it"; exit 1; fi

# Both declarations of every hook in one translation unit, for both
# compilers the project uses: a mismatch is a compile error.
rust-header-matches-c:
	@$(SETUP) host riscv
	gcc $(C_CORE) -c $(HEADER_TU) -o /dev/null
	riscv64-unknown-elf-gcc $(C_CORE) $(RV_FLAGS) -c $(HEADER_TU) -o /dev/null

# What crates.io (or a vendored copy) would get: every C source and header
# in the list, and the packaged crate builds on its own, offline, in a
# fresh directory.
rust-package:
	@list=$$(mktemp); $(CARGO) package --list --allow-dirty >$$list || exit 1; \
	 missing=0; for f in $(C_SRCS) $(C_HDRS) $(HOOKS_H) build.rs rust-shim/lib.rs; do \
	     grep -qx "$$f" $$list || { echo "missing from the package: $$f"; missing=1; }; done; \
	 echo "package: $$(wc -l <$$list) files"; rm -f $$list; test $$missing = 0
	@rm -rf $(BUILD)/package
	$(CARGO) package --no-verify --allow-dirty --offline --target-dir $(BUILD)/package
	@# Outside the repository: inside it, the root workspace would claim it.
	@crate=$$(ls $(BUILD)/package/package/hartalloc-*.crate | head -1); \
	 dir=$$(mktemp -d); trap 'rm -rf "$$dir"' EXIT; \
	 tar -xzf $$crate -C $$dir && cd $$dir/hartalloc-* && \
	 $(CARGO) build --offline && \
	 echo "SHOW packaged crate builds on its own from $$(basename $$crate)"

RUST_CHECK_RUN := env RUST_BACKTRACE=0 timeout $(RUST_TEST_TIMEOUT)

# The `nightly` feature (core::alloc::Allocator) on the stable toolchain,
# allowed by RUSTC_BOOTSTRAP; a target dir of its own, since the flag
# changes every crate's fingerprint.
rust-test-nightly:
	RUSTC_BOOTSTRAP=1 $(RUST_CHECK_RUN) $(CARGO) test --features std,allocator-api2,nightly \
	    --test allocator --target-dir $(BUILD)/rust-nightly
	RUSTC_BOOTSTRAP=1 $(CARGO) clippy --lib --features allocator-api2,nightly \
	    --target-dir $(BUILD)/rust-nightly -- -D warnings

test-rust:
	@$(SETUP) host
	@$(CHECK) rust-cargo-test $(RUST_CHECK_RUN) $(CARGO) test --features std
	@$(CHECK) rust-cargo-test-checked $(RUST_CHECK_RUN) $(CARGO) test --features std,checked
	@$(CHECK) rust-cargo-test-features $(RUST_CHECK_RUN) $(CARGO) test --features std,allocator-api2,critical-section \
	    --test allocator --test critical_section --test readme_std
	@$(CHECK) rust-cargo-test-nightly $(MAKE) --no-print-directory rust-test-nightly
	@$(CHECK) rust-clippy $(CARGO) clippy --all-targets --features std -- -D warnings
	@$(CHECK) rust-clippy-no-std $(CARGO) clippy --lib -- -D warnings
	@$(CHECK) rust-doc $(MAKE) --no-print-directory rust-doc
	@$(CHECK) rust-doc-examples $(MAKE) --no-print-directory rust-doc-examples
	@$(CHECK) rust-publish-dry-run $(CARGO) publish --dry-run --allow-dirty --target-dir $(BUILD)/publish
	@$(CHECK) rust-build-riscv64 $(MAKE) --no-print-directory rust-build-riscv64
	@$(CHECK) rust-header-fresh $(MAKE) --no-print-directory rust-header-fresh
	@$(CHECK) rust-sys-fresh $(MAKE) --no-print-directory rust-sys-fresh
	@$(CHECK) rust-header-matches-c $(MAKE) --no-print-directory rust-header-matches-c
	@$(CHECK) rust-package $(MAKE) --no-print-directory rust-package

TEST_STEPS += test-rust
