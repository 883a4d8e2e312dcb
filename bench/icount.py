#!/usr/bin/env python3
"""Instructions per operation under callgrind: hartalloc against the peers.

    icount.py --c build/bench/cbench --rust build/bench/target/release/hartalloc-bench \
              --ops N --out DIR [--check]

Each allocator runs in its harness's --icount mode under
`valgrind --tool=callgrind --collect-atstart=no --toggle-collect=F
--dump-after=F`, F being the harness's measured loop (cbench.c:icount_run,
icount.rs:icount_run): only that loop is counted, one total per workload.
The sequences are generated before the loop from a fixed seed, the same in
both harnesses, and each runs once untimed first.  The same loop with a
null allocator (a fixed block, no-op free) gives the loop's own cost,
subtracted: figures are the allocator's own instructions per operation
(churn: per alloc or free; pairs: per alloc+free).  Ratios are peer /
hartalloc of the same harness (above 1: hartalloc needs fewer).  Writes
DIR/icount.csv and DIR/icount.md and prints the table; --check fails
unless every figure is there and positive (the smoke test).
"""
import argparse
import csv
import datetime
import glob
import os
import platform
import subprocess
import sys
import tempfile

SEED = 0x686172740000
# (name, column title, what it is, target for hartalloc)
WORKLOADS = [
    ("churn", "churn", "random sizes 8..4096 B over 1024 slots: alloc into an empty slot, else free it; "
     "per alloc or free", 100),
    ("pair64", "64 B pair", "alloc+free of 64 B; per pair", 50),
    ("mid", "mid pair", "alloc+free of random sizes 1..16 KiB; per pair", 150),
    ("frame", "frame pair", "alloc+free of one 4 KiB page; per pair", 60),
]
# harness -> (its hartalloc, peers, the measured function as callgrind names it)
HARNESSES = {
    "c": ("hartalloc-c", ["glibc", "jemalloc", "mimalloc"], "icount_run"),
    "rust": ("hartalloc", ["talc", "rlsf", "buddy_system_allocator"], "hartalloc_bench::icount::icount_run"),
}
FRAME_NOTE = {
    "hartalloc-c": "ha_alloc_pages(1, 4096) / ha_free_pages(p, 1)",
    "hartalloc": "ha_alloc_pages(1, 4096) / ha_free_pages(p, 1)",
    "glibc": "memalign(4096, 4096) / free",
    "jemalloc": "mallocx(4096, MALLOCX_LG_ALIGN(12)) / sdallocx",
    "mimalloc": "mi_malloc_aligned(4096, 4096) / mi_free_size_aligned",
    "talc": "GlobalAlloc::alloc(4096 at 4096)",
    "rlsf": "GlobalAlloc::alloc(4096 at 4096)",
    "buddy_system_allocator": "GlobalAlloc::alloc(4096 at 4096)",
}


def measure(binary, alloc, fn, ops, tmp):
    """Totals of the measured loop, one per workload, in order."""
    out = os.path.join(tmp, f"cg-{alloc}.out")
    cmd = ["valgrind", "--tool=callgrind", "--collect-atstart=no", f"--toggle-collect={fn}",
           f"--dump-after={fn}", f"--callgrind-out-file={out}", binary, "--icount", alloc, str(ops)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stdout + r.stderr)
        raise SystemExit(f"icount: {alloc} failed under callgrind ({' '.join(cmd)})")
    totals = []
    for part in sorted(glob.glob(out + ".*"), key=lambda p: int(p.rsplit(".", 1)[1])):
        with open(part) as f:
            for line in f:
                if line.startswith("totals:"):
                    totals.append(int(line.split()[1]))
    if len(totals) != len(WORKLOADS):
        raise SystemExit(f"icount: {alloc}: {len(totals)} dumps, expected {len(WORKLOADS)}")
    return totals


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--c", required=True)
    ap.add_argument("--rust", required=True)
    ap.add_argument("--ops", type=int, default=100000)
    ap.add_argument("--out", required=True)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    n = args.ops
    print(f"icount: callgrind, {n} ops per workload after {n} untimed, seed {SEED:#x}+workload, "
          f"loop overhead (null allocator) subtracted")
    rows = []  # (harness, allocator, [per-op figures], [raw totals], [null totals])
    with tempfile.TemporaryDirectory() as tmp:
        for h, (hart, peers, fn) in HARNESSES.items():
            binary = args.c if h == "c" else args.rust
            null = measure(binary, "null", fn, n, tmp)
            for a in [hart] + peers:
                t = measure(binary, a, fn, n, tmp)
                rows.append((h, a, [(x - z) / n for x, z in zip(t, null)], t, null))
                print(f"  {h:4s} {a:24s} " + "  ".join(f"{w[0]} {v:8.1f}" for w, v in zip(WORKLOADS, rows[-1][2])))

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "icount.csv"), "w", newline="") as f:
        cw = csv.writer(f)
        cw.writerow(["harness", "workload", "allocator", "instructions_per_op", "loop_total", "null_total", "ops"])
        for h, a, per, t, z in rows:
            for w, v, x, y in zip(WORKLOADS, per, t, z):
                cw.writerow([h, w[0], a, f"{v:.1f}", x, y, n])

    hdr = ["allocator"]
    for _, title, _, _ in WORKLOADS:
        hdr += [title, "ratio"]
    body = []
    for h, (hart, peers, _) in HARNESSES.items():
        base = next(r[2] for r in rows if r[0] == h and r[1] == hart)
        for hh, a, per, _, _ in rows:
            if hh != h:
                continue
            line = [a + (" (Rust crate)" if a == "hartalloc" else " (C API)" if a == "hartalloc-c" else "")]
            for i, w in enumerate(WORKLOADS):
                if a == hart:
                    line += [f"{per[i]:.0f}", f"meets <= {w[3]}" if per[i] <= w[3] else f"misses <= {w[3]}"]
                else:
                    line += [f"{per[i]:.0f}", f"{per[i] / base[i]:.2f}" if base[i] > 0 else "-"]
            body.append(line)
    target = ["target for hartalloc"]
    for w in WORKLOADS:
        target += [f"<= {w[3]}", ""]
    body.append(target)

    print("\n== Instructions per operation (callgrind; allocator's own, loop overhead subtracted) ==")
    print(text_table(hdr, body))
    legend = [f"{w[1]}: {w[2]}" for w in WORKLOADS] + [
        "ratio: peer / hartalloc of the same harness (above 1: hartalloc executes fewer); "
        "on hartalloc's rows: its target"]
    print("\n".join(legend))
    nulls = {h: next(r[4] for r in rows if r[0] == h) for h in HARNESSES}
    loop = "; ".join(f"{h}: " + ", ".join(f"{w[0]} {z / n:.1f}" for w, z in zip(WORKLOADS, nulls[h]))
                     for h in HARNESSES)
    print(f"loop overhead subtracted (null allocator, instructions per op): {loop}")

    with open(os.path.join(args.out, "icount.md"), "w") as f:
        f.write("# Instructions per operation (callgrind)\n\n")
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        f.write(f"Written by `bench/icount.py` (`make bench`) on {when}, commit {rev or '?'}, "
                f"{platform.machine()} (valgrind: {valgrind_version()}): {n} operations per workload after {n} "
                f"untimed, seed {SEED:#x}+workload, the same sequences in both harnesses. Only the "
                "operation loop is counted (`valgrind --tool=callgrind --collect-atstart=no "
                "--toggle-collect=F --dump-after=F`, F = `icount_run` in cbench.c, "
                "`hartalloc_bench::icount::icount_run` in the Rust harness); the same loop over a null "
                "allocator (a fixed block, no-op free) is subtracted, so the figures are the "
                "allocators' own instructions. Churn: each operation picks a random slot of 1024 and "
                "allocates 8..4096 B into it when empty, else frees it. Ratios: peer / hartalloc of "
                "the same harness (above 1: hartalloc executes fewer instructions). Alignment 8 for "
                "bytes. Instructions are not time: a cache miss or a lock costs more than an "
                "instruction.\n\n")
        f.write("".join(f"- {x}\n" for x in legend) + "\n")
        f.write(md_table(hdr, body))
        f.write(f"\nLoop overhead subtracted (null allocator, instructions per operation): {loop}.\n\n")
        f.write("Frames: " + "; ".join(f"{a}: `{FRAME_NOTE[a]}`" for _, a, *_ in rows) + ".\n")

    if args.check:
        bad = [(h, a, w[0], v) for h, a, per, _, _ in rows for w, v in zip(WORKLOADS, per) if not v > 0]
        for b in bad:
            print(f"icount: figure not sane: {b}")
        print(f"icount: {len(rows) * len(WORKLOADS)} figures checked: " + ("sane" if not bad else "PROBLEMS"))
        sys.exit(1 if bad else 0)


def valgrind_version():
    r = subprocess.run(["valgrind", "--version"], capture_output=True, text=True)
    return r.stdout.strip() or "?"


def text_table(hdr, body):
    w = [max(len(str(x)) for x in col) for col in zip(hdr, *body)]
    return "\n".join("  ".join(str(x).rjust(k) if i else str(x).ljust(k) for i, (x, k) in enumerate(zip(r, w)))
                     for r in [hdr] + body)


def md_table(hdr, body):
    out = ["| " + " | ".join(hdr) + " |", "|---|" + "---:|" * (len(hdr) - 1)]
    for r in body:
        bold = r[0].startswith("hartalloc")
        out.append("| " + " | ".join(f"**{x}**" if bold and x else str(x) for x in r) + " |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
