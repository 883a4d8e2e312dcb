#!/usr/bin/env python3
"""Turn the harnesses' raw rows into tables, CSVs, charts and SUMMARY.md.

    report.py --raw rust-raw.csv c-raw.csv --out bench/results [--no-plots] [--check]

Raw rows: harness,workload,param,allocator,trial,metric,value.  For each
figure the median over trials is reported, with the run-to-run spread
((max - min) / median over the trials).  "vs hartalloc" is hartalloc's
figure over the peer's when more is better, the peer's over hartalloc's
when less is better: above 1 hartalloc is ahead.  Each harness's peers are
compared with that harness's hartalloc (the Rust GlobalAlloc for the
Rust harness, the C API for the C driver).  --check only verifies that
every figure is sane (the smoke test): positive, finite, no failed trial.
"""
import argparse
import collections
import csv
import datetime
import math
import os
import platform
import statistics
import subprocess
import sys

HART = {"rust": "hartalloc", "c": "hartalloc-c"}

# workload -> (title, metric, unit, more_is_better, note)
WORKLOADS = [
    ("random_actions", "Random actions (talc's benchmark)", "ops_per_s", "Mops/s", True,
     "Successful alloc/free/realloc operations in a fixed window, 128 MiB arena, "
     "sizes cap=rand(16..max), size=rand(4..cap), realloc up to 3*max."),
    ("random_actions_norealloc", "Random actions without realloc", "ops_per_s", "Mops/s", True,
     "As above, alloc and free only."),
    ("random_actions_mt", "Random actions, multi-threaded", "ops_per_s", "Mops/s", True,
     "As random actions, one loop per core on the same allocator (the peers behind a spinlock)."),
    ("heap_efficiency", "Heap efficiency (talc's)", "efficiency", "% of arena", True,
     "alloc 50% (<= 10000 B) / free 10% / realloc 40% (<= 100000 B) until the first failure; "
     "live requested bytes / arena size (4 and 32 MiB), mean over 300 rounds."),
    ("latency", "Latency: one free + one alloc", None, "cycles (rdtsc)", False,
     "300 live blocks sized as random actions; cycles for free(old) + alloc(new), percentiles."),
    ("collections", "ArceOS collections benchmarks", "ms", "ms per iteration", False,
     "axallocator's benches/collections.rs on a 128 MiB pool, through the global allocator."),
    ("pages", "Page allocator", None, "", True,
     "single: 4096 pages held, free one + take one; runs: 1..64 pages at power-of-two "
     "alignments, heap 1/4..1/2 full; largest run still available afterwards."),
    ("smp", "SMP scaling: small objects with cross-thread frees", "ops_per_s", "Mops/s", True,
     "8..256 B objects; each round a thread allocates 32, frees 16, hands 16 to the next thread."),
    ("cache_scratch", "Cache-scratch (Hoard's false-sharing test)", "ms", "ms", False,
     "The main thread allocates one 8 B object per worker and hands them to 2 worker threads; each "
     "frees its object, then 2000 times allocates 8 B, increments each byte 1000 times and frees it. "
     "An allocator that puts the workers' blocks on one cache line makes it slow (false sharing). "
     "Figure: the workers' CPU time summed, ms (the wall time, as Hoard reports it, is in the CSV "
     "as wall_ms; on a shared host it mostly measures the other work)."),
]
# Workloads where hartalloc has a target against named peers:
# workload -> (harness, [peers], hartalloc / peer at most).
TARGETS = {"cache_scratch": ("c", ["glibc", "mimalloc"], 1.2)}
LAT_METRICS = ["p1", "p25", "p50", "p75", "p99", "p99.9", "max"]


def load(paths):
    rows = []
    for p in paths:
        with open(p) as f:
            for r in csv.reader(f):
                if len(r) == 7:
                    h, w, par, a, t, m, v = r
                    rows.append((h, w, par, a, int(t), m, float(v)))
    return rows


def order_allocs(names):
    first = [n for n in names if n.startswith("hartalloc")]
    return first + [n for n in names if not n.startswith("hartalloc")]


def fmt(v, unit):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if unit == "Mops/s":
        return f"{v / 1e6:.2f}"
    if unit == "% of arena":
        return f"{v * 100:.1f}"
    if unit == "ms per iteration":
        return f"{v:.2f}"
    return f"{v:.0f}" if v >= 100 else f"{v:.3g}"


def ratio(h, p, more_better):
    if h is None or p is None or h == 0 or p == 0:
        return None
    return h / p if more_better else p / h


class Stat:
    def __init__(self, vals, mean=False):
        self.vals = vals
        self.mid = statistics.mean(vals) if mean else statistics.median(vals)
        self.spread = (max(vals) - min(vals)) / self.mid if self.mid else 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", nargs="+", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--no-plots", action="store_true")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--elapsed", default="")
    args = ap.parse_args()
    rows = load(args.raw)

    failed = [r for r in rows if r[5] == "failed"]
    if args.check:
        problems = []
        if failed:
            problems.append(f"{len(failed)} failed trials, e.g. {failed[0][:5]}")
        insane = [r for r in rows if r[5] not in ("failed",) and not math.isfinite(r[6])]
        insane += [r for r in rows if r[5] in ("ops_per_s", "efficiency", "ms", "p50", "largest_run_pages")
                   and r[6] <= 0]
        insane += [r for r in rows if r[5] == "efficiency" and r[6] > 1]
        if insane:
            problems.append(f"{len(insane)} figures not sane, e.g. {insane[0]}")
        seen = {(r[0], r[1]) for r in rows}
        for need in [("rust", "random_actions"), ("rust", "heap_efficiency"), ("rust", "latency"),
                     ("rust", "collections"), ("rust", "pages"), ("rust", "smp"),
                     ("c", "random_actions"), ("c", "latency"), ("c", "smp"), ("c", "cache_scratch")]:
            if need not in seen:
                problems.append(f"no figures for {need}")
        allocs = {r[3] for r in rows}
        for a in ["hartalloc", "talc", "rlsf", "buddy_system_allocator", "linked_list_allocator",
                  "arceos-tlsf", "arceos-slab", "arceos-buddy", "hartalloc-c", "glibc", "jemalloc",
                  "mimalloc", "buddy_system_allocator::FrameAllocator", "bitmap-allocator"]:
            if a not in allocs:
                problems.append(f"no figures for allocator {a}")
        for p in problems:
            print("report: " + p)
        print(f"report: {len(rows)} figures from {len(args.raw)} harnesses checked: "
              + ("sane" if not problems else "PROBLEMS"))
        sys.exit(1 if problems else 0)

    # (h, w, param, alloc, metric) -> values
    vals = collections.defaultdict(list)
    for h, w, par, a, t, m, v in rows:
        if m != "failed":
            vals[(h, w, par, a, m)].append(v)
    os.makedirs(args.out, exist_ok=True)
    md = []
    closing = []
    spreads_all = {}

    def stat(h, w, par, a, m):
        v = vals.get((h, w, par, a, m))
        if not v:
            return None
        return Stat(v, mean=(w == "heap_efficiency"))

    for w, title, metric, unit, more_better, note in WORKLOADS:
        present = sorted({(h, par, a) for (h, ww, par, a, m) in vals if ww == w})
        if not present:
            continue
        params = sorted({par for (_, par, _) in present}, key=param_key)
        out_rows = []
        tables = []
        spreads = []
        best_ratio = None  # (ratio, param, peer)
        for h in ("rust", "c"):
            allocs = order_allocs(sorted({a for (hh, _, a) in present if hh == h}, key=str))
            if not allocs:
                continue
            if w == "latency":
                for par in params:
                    hdr = ["allocator"] + LAT_METRICS + ["p50 vs hartalloc", "p99 vs hartalloc"]
                    body = []
                    for a in allocs:
                        sts = {m: stat(h, w, par, a, m) for m in LAT_METRICS}
                        if all(s is None for s in sts.values()):
                            continue
                        r50 = ratio(stat(h, w, par, HART[h], "p50").mid, sts["p50"].mid, False)
                        r99 = ratio(stat(h, w, par, HART[h], "p99").mid, sts["p99"].mid, False)
                        body.append([a] + [fmt(sts[m].mid, unit) for m in LAT_METRICS]
                                    + ([f"{r50:.2f}", f"{r99:.2f}"] if a != HART[h] else ["1", "1"]))
                        for m in LAT_METRICS:
                            out_rows.append([h, par, a, m, sts[m].mid, min(sts[m].vals), max(sts[m].vals),
                                             f"{sts[m].spread:.3f}"])
                        spreads.append(sts["p50"].spread)
                        if a != HART[h]:
                            best_ratio = worse(best_ratio, (r50, f"{par} p50", a))
                            best_ratio = worse(best_ratio, (r99, f"{par} p99", a))
                    tables.append((f"{h} harness, {par}, {unit}", hdr, body))
                continue
            metrics = [metric] if metric else ["ops_per_s", "largest_run_pages", "failed_allocs"]
            for m in metrics:
                mpar = [p for p in params if any(stat(h, w, p, a, m) for a in allocs)]
                if not mpar:
                    continue
                mb = more_better if m != "failed_allocs" else False
                u = unit if metric else {"ops_per_s": "Mops/s", "largest_run_pages": "pages",
                                         "failed_allocs": "failed allocations"}[m]
                hdr = ["allocator"]
                for p in mpar:
                    hdr += [p, "vs hartalloc"]
                body = []
                for a in allocs:
                    line = [a]
                    any_fig = False
                    for p in mpar:
                        s = stat(h, w, p, a, m)
                        hs = stat(h, w, p, HART[h], m)
                        if s is None:
                            line += ["-", "-"]
                            continue
                        any_fig = True
                        r = ratio(hs.mid if hs else None, s.mid, mb)
                        line += [fmt(s.mid, u), "" if a == HART[h] else (f"{r:.2f}" if r else "-")]
                        out_rows.append([h, p, a, m, s.mid, min(s.vals), max(s.vals), f"{s.spread:.3f}"])
                        if m != "failed_allocs":
                            spreads.append(s.spread)
                        if a != HART[h] and r is not None and m != "failed_allocs":
                            best_ratio = worse(best_ratio, (r, f"{p}" + ("" if metric else f" {m}"), a))
                    if any_fig:
                        body.append(line)
                tables.append((f"{h} harness, {u}" + ("" if metric else f" ({m})"), hdr, body))

        with open(os.path.join(args.out, f"{w}.csv"), "w", newline="") as f:
            cw = csv.writer(f)
            cw.writerow(["harness", "param", "allocator", "metric", "median" if w != "heap_efficiency" else "mean",
                         "min", "max", "spread"])
            cw.writerows(out_rows)
        sp = (statistics.median(spreads), max(spreads)) if spreads else (0, 0)
        spreads_all[w] = sp
        print(f"\n== {title} ==\n{note}")
        md.append(f"### {title}\n\n{note}\n")
        for cap, hdr, body in tables:
            print(f"-- {cap}")
            print(text_table(hdr, body))
            md.append(f"*{cap}*\n\n" + md_table(hdr, body) + "\n")
        if w in TARGETS:
            th, peers, most = TARGETS[w]
            for p in params:
                hs = stat(th, w, p, HART[th], metric)
                for peer in peers:
                    ps = stat(th, w, p, peer, metric)
                    if hs and ps and ps.mid:
                        r = hs.mid / ps.mid if not more_better else ps.mid / hs.mid
                        t = (f"{HART[th]} / {peer} ({p}): {r:.2f} (target <= {most}: "
                             f"{'met' if r <= most else 'missed'})")
                        print(t)
                        md.append(t + "\n")
        if w == "cache_scratch":
            shared = [f"{a} {'yes' if statistics.median(vals[k]) >= 0.5 else 'no'}"
                      for k in sorted(vals) if k[1] == w and k[4] == "shared_line" for a in [k[3]]]
            if shared:
                t = "workers' blocks on one 64 B cache line (false sharing when they run at once): " + ", ".join(shared)
                print(t)
                md.append(t + "\n")
        line = (f"run-to-run spread (max-min)/median over trials: median {sp[0] * 100:.1f}%, "
                f"worst {sp[1] * 100:.1f}%")
        print(line)
        md.append(line + "\n")
        if best_ratio:
            closing.append((title, best_ratio))
        if not args.no_plots:
            png = plot(w, title, unit, metric, vals, args.out)
            md.append(f"![{title}]({os.path.basename(png)})\n")

    summary = ["| workload | hartalloc vs best peer (worst case over its parameters) | where | best peer there |",
               "| --- | --- | --- | --- |"]
    print("\n== hartalloc's ratio to the best peer (above 1: hartalloc ahead) ==")
    for title, (r, where, peer) in closing:
        summary.append(f"| {title} | {r:.2f} | {where} | {peer} |")
        print(f"  {title:55s} {r:6.2f}  at {where} (vs {peer})")

    head = machine(args.elapsed)
    with open(os.path.join(args.out, "SUMMARY.md"), "w") as f:
        f.write("# hartalloc benchmarks\n\n" + head + "\n")
        f.write("Ratios are hartalloc's advantage over the peer (above 1: hartalloc ahead; for times, "
                "peer time / hartalloc time). Each harness compares its peers with its own hartalloc "
                "(Rust: the crate's GlobalAlloc; C: the C API). Figures are medians over the trials "
                "(heap efficiency: mean over the rounds).\n\n")
        f.write("## hartalloc against the best peer\n\n" + "\n".join(summary) + "\n\n")
        f.write("## Tables\n\n" + "\n".join(md))
        # The instruction counts (bench/icount.py) have a page of their
        # own; SUMMARY.md carries it when it is there.
        icount = os.path.join(args.out, "icount.md")
        if os.path.exists(icount):
            with open(icount) as ic:
                f.write("\n## " + ic.read().lstrip("# "))
            if not args.no_plots and os.path.exists(os.path.join(args.out, "icount.csv")):
                png = plot_icount(os.path.join(args.out, "icount.csv"), args.out)
                f.write(f"\n![Instructions per operation]({os.path.basename(png)})\n")


def worse(cur, cand):
    """Keep the smallest ratio: hartalloc's worst standing against any peer."""
    if cand[0] is None:
        return cur
    return cand if cur is None or cand[0] < cur[0] else cur


def param_key(p):
    k, _, v = p.partition("=")
    try:
        return (k, int(v))
    except ValueError:
        return (k, 0, p)


def text_table(hdr, body):
    w = [max(len(str(x)) for x in col) for col in zip(hdr, *body)]
    lines = ["  ".join(str(x).rjust(n) if i else str(x).ljust(n) for i, (x, n) in enumerate(zip(r, w)))
             for r in [hdr] + body]
    return "\n".join(lines)


def md_table(hdr, body):
    out = ["| " + " | ".join(hdr) + " |", "|" + "---|" * len(hdr)]
    for r in body:
        bold = r[0].startswith("hartalloc")
        # An empty cell stays empty: "****" renders as literal asterisks.
        out.append("| " + " | ".join(f"**{x}**" if bold and str(x) else str(x) for x in r) + " |")
    return "\n".join(out) + "\n"


def machine(elapsed):
    model = cores = "?"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
            if line.startswith("CPU(s):"):
                cores = line.split(":", 1)[1].strip()
    except OSError:
        pass
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    s = (f"- machine: {model}, {cores} CPUs ({platform.system()} {platform.release()}, {platform.machine()})\n"
         f"- date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}\n"
         f"- commit: {rev or '?'}\n")
    if elapsed:
        s += f"- `make bench` took {elapsed}\n"
    return s


# One colour per allocator, the same in every chart.  hartalloc's two
# front ends take the two strongest colours, which no peer uses, and are
# drawn with a thick black edge; the peers are lighter and, for the C
# harness, hatched.
COLOURS = {
    "hartalloc": "#e8000b",
    "hartalloc-c": "#1a1a1a",
    "talc": "#2ca02c",
    "rlsf": "#17becf",
    "buddy_system_allocator": "#9467bd",
    "linked_list_allocator": "#8c564b",
    "arceos-tlsf": "#bcbd22",
    "arceos-slab": "#f7a1d4",
    "arceos-buddy": "#9c9c9c",
    "glibc": "#4f8fd6",
    "jemalloc": "#ff9f40",
    "mimalloc": "#7ad6b0",
    "buddy_system_allocator::FrameAllocator": "#9467bd",
    "bitmap-allocator": "#c7a76c",
    "null": "#dddddd",
}
C_PEERS = ("glibc", "jemalloc", "mimalloc")
MORE_IS_BETTER = {w[0]: w[4] for w in WORKLOADS}


def colour(a):
    return COLOURS.get(a, "#777777")


def plain(v, _pos=None):
    """A tick label as a plain number: 40, 0.5, 2000 (never 4x10^1)."""
    if v <= 0:
        return "0"
    if v >= 1000:
        return f"{v:,.0f}"
    if v >= 1:
        return f"{v:.0f}" if abs(v - round(v)) < 1e-9 else f"{v:g}"
    return f"{v:.2g}"


def plain_axis(ax, logy):
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
    if logy:
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_major_formatter(FuncFormatter(plain))


def wide(values, span):
    """Log scale only where the figures span more than `span` times: on a
    narrow range a log axis makes small differences look large."""
    v = [x for x in values if x is not None and x > 0]
    return bool(v) and max(v) / min(v) > span


def bars(ax, groups, series, get, logy):
    """Grouped bars; hartalloc's stand out.  get(a, g) -> value or None."""
    n = len(series)
    width = 0.8 / max(n, 1)
    for i, a in enumerate(series):
        ys = [get(a, g) for g in groups]
        xs = [j + (i - (n - 1) / 2) * width for j in range(len(groups))]
        keep = [(x, y) for x, y in zip(xs, ys) if y is not None and (y > 0 or not logy)]
        if not keep:
            ax.bar([], [], width, label=a, color=colour(a))
            continue
        hart = a.startswith("hartalloc")
        ax.bar([x for x, _ in keep], [y for _, y in keep], width, label=a, color=colour(a),
               edgecolor="black" if hart else "white", linewidth=2.0 if hart else 0.3,
               hatch="//" if a in C_PEERS else None, alpha=1.0 if hart else 0.9, zorder=3 if hart else 2)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups, fontsize=8)
    plain_axis(ax, logy)
    ax.grid(axis="y", alpha=0.3, which="major")


def plot(w, title, unit, metric, vals, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    more_better = MORE_IS_BETTER[w]

    def med(h, par, a, m):
        v = vals.get((h, w, par, a, m))
        if not v:
            return None
        return statistics.mean(v) if w == "heap_efficiency" else statistics.median(v)

    keys = {(h, par, a, m) for (h, ww, par, a, m) in vals if ww == w}
    harness_of = {a: h for (h, p, a, m) in keys}
    scale = 1.0
    if unit == "Mops/s":
        scale = 1e-6
    elif w == "heap_efficiency":
        scale = 100.0

    # Each panel: (label of the absolute view, groups, series, get(a, g) in
    # raw units, more is better, log scale).
    panels = []
    if w == "latency":
        for par in sorted({k[1] for k in keys}, key=param_key):
            groups = ["p25", "p50", "p75", "p99", "p99.9"]
            series = order_allocs(sorted({a for (h, p, a, m) in keys if p == par}))
            panels.append((f"{par}: cycles per free+alloc", groups, series,
                           lambda a, g, par=par: med(harness_of[a], par, a, g), False, True))
    elif w == "pages":
        for m, label, sc in [("ops_per_s", "ops/s (Mops/s)", 1e-6),
                             ("largest_run_pages", "largest run after fragmentation (pages)", 1.0)]:
            groups = sorted({p for (h, p, a, mm) in keys if mm == m}, key=param_key)
            series = order_allocs(sorted({a for (h, p, a, mm) in keys if mm == m}))
            panels.append((label, groups, series,
                           lambda a, g, m=m, sc=sc: (lambda v: v * sc if v is not None else None)(
                               med(harness_of[a], g, a, m)), True, False))
    else:
        m = metric or next(iter({k[3] for k in keys}))
        groups = sorted({p for (h, p, a, mm) in keys if mm == m}, key=param_key)
        series = order_allocs(sorted({a for (h, p, a, mm) in keys if mm == m}))
        logy = w in ("random_actions", "random_actions_norealloc", "random_actions_mt", "collections", "smp",
                     "cache_scratch")
        panels.append((unit, groups, series,
                       lambda a, g, m=m: (lambda v: v * scale if v is not None else None)(
                           med(harness_of[a], g, a, m)), more_better, logy))

    fig, axes = plt.subplots(len(panels), 2, figsize=(16, 4.6 * len(panels)), squeeze=False,
                             gridspec_kw={"width_ratios": [3, 2]})
    for row, (label, groups, series, get, mb, logy) in enumerate(panels):
        ax, rx = axes[row]
        logy = logy and wide([get(a, g) for a in series for g in groups], 20)
        bars(ax, groups, series, get, logy)
        ax.set_ylabel(label + (", log scale" if logy else ""))
        ax.legend(fontsize=7, ncol=4, loc="best")

        def adv(a, g):
            hart = HART[harness_of[a]]
            if a == hart:
                return None
            return ratio(get(hart, g), get(a, g), mb)
        peers = [a for a in series if not a.startswith("hartalloc")]
        rlog = wide([adv(a, g) for a in peers for g in groups] + [1.0], 5)
        bars(rx, groups, peers, adv, rlog)
        rx.axhline(1.0, color="black", linewidth=1.5, zorder=4)
        rx.set_ylabel("hartalloc's advantage" + (", log scale" if rlog else ""))
        rx.set_title(("peer time / hartalloc time" if not mb else "hartalloc / peer")
                     + ": above 1, hartalloc ahead", fontsize=9)
    axes[0, 0].set_title(f"{title} (medians; {'lower' if not more_better else 'higher'} is better)")
    fig.tight_layout()
    png = os.path.join(out, f"{w}.png")
    fig.savefig(png, dpi=90)
    plt.close(fig)
    return png


def plot_icount(path, out):
    """bench/icount.py's table as a chart: instructions per operation, and
    the peers' counts over hartalloc's (above 1: hartalloc executes fewer)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig_vals = {}
    harness_of = {}
    groups = []
    with open(path) as f:
        for r in csv.DictReader(f):
            fig_vals[(r["allocator"], r["workload"])] = float(r["instructions_per_op"])
            harness_of[r["allocator"]] = r["harness"]
            if r["workload"] not in groups:
                groups.append(r["workload"])
    series = order_allocs(list(dict.fromkeys(a for a, _ in fig_vals)))
    get = lambda a, g: fig_vals.get((a, g))
    fig, (ax, rx) = plt.subplots(1, 2, figsize=(16, 4.6), gridspec_kw={"width_ratios": [3, 2]})
    logy = wide([get(a, g) for a in series for g in groups], 20)
    bars(ax, groups, series, get, logy)
    # hartalloc's targets (issue 9; bench/icount.py prints them too).
    targets = {"churn": 100, "pair64": 50, "mid": 150, "frame": 60}
    for j, g in enumerate(groups):
        if g in targets:
            ax.hlines(targets[g], j - 0.42, j + 0.42, colors=colour("hartalloc"), linestyles="dashed",
                      linewidth=1.5, zorder=5, label="hartalloc's target" if j == 0 else None)
    ax.set_ylabel("instructions per operation" + (", log scale" if logy else ""))
    ax.legend(fontsize=7, ncol=4)
    ax.set_title("Instructions per operation, callgrind (lower is better; churn: per alloc or free, "
                 "pairs: per alloc+free)", fontsize=10)

    def adv(a, g):
        hart = HART[harness_of[a]]
        return None if a == hart else ratio(get(hart, g), get(a, g), False)
    peers = [a for a in series if not a.startswith("hartalloc")]
    rlog = wide([adv(a, g) for a in peers for g in groups] + [1.0], 5)
    bars(rx, groups, peers, adv, rlog)
    rx.axhline(1.0, color="black", linewidth=1.5, zorder=4)
    rx.set_ylabel("hartalloc's advantage" + (", log scale" if rlog else ""))
    rx.set_title("peer instructions / hartalloc instructions: above 1, hartalloc ahead", fontsize=9)
    fig.tight_layout()
    png = os.path.join(out, "icount.png")
    fig.savefig(png, dpi=90)
    plt.close(fig)
    return png


if __name__ == "__main__":
    main()
