#!/usr/bin/python3
"""report.py - turn a run's raw figures into the markdown report.

    report.py WORK OUT.md

Reads WORK/results.tsv (one line per measurement, from run.sh), WORK/meta
(key=value) and WORK/load.tsv; prints the report and writes it to OUT.md.

Every figure is the median over the runs, with min and max beside it.
Ratios are taken pair by pair within a run (blitfs's time in run 2 over
the local disk's time in run 2), and then their median, min and max: a
slow moment of the shared machine then weighs on both sides of a ratio
rather than on one.
"""
import collections
import statistics
import sys

NAMES = {
    "local": "local disk",
    "s3fs": "s3fs",
    "rclone-mount": "rclone mount",
    "rclone-copy": "rclone copy",
    "blitfs": "blitfs",
    "blitfs-10": "blitfs, write_rate 10/s",
}
ORDER = ["local", "s3fs", "rclone-mount", "rclone-copy", "blitfs",
         "blitfs-10"]
MIB = 1024 * 1024


def num(s):
    try:
        return float(s)
    except ValueError:
        return None


def load(work):
    rows = collections.defaultdict(dict)   # (w, who) -> run -> fields
    with open(f"{work}/results.tsv") as f:
        for line in f:
            p = line.rstrip("\n").split("\t")
            if len(p) < 10:
                continue
            run, w, who = int(p[0]), p[1], p[2]
            rows[(w, who)][run] = {
                "write": num(p[3]), "bucket": num(p[4]),
                "rss": num(p[5]), "cpu": num(p[6]),
                "rb_med": num(p[7]), "rb_max": num(p[8]),
                "status": p[9]}
    meta = {}
    with open(f"{work}/meta") as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("=")
            meta[k] = v
    loads = []
    try:
        with open(f"{work}/load.tsv") as f:
            for line in f:
                p = line.split()
                loads.append((p[0], float(p[1]), int(p[4]), int(p[5])))
    except (FileNotFoundError, IndexError, ValueError):
        pass
    return rows, meta, loads


def stat3(vals):
    """(median, min, max) of the values that exist, or None."""
    vals = [v for v in vals if v is not None]
    if not vals:
        return None
    return statistics.median(vals), min(vals), max(vals)


def fmt(t, scale=1.0, digits=2, unit=""):
    if t is None:
        return "n/a"
    med, lo, hi = (x * scale for x in t)
    s = f"{med:.{digits}f}{unit}"
    if hi - lo >= 0.5 * 10 ** -digits:
        s += f" ({lo:.{digits}f}–{hi:.{digits}f})"
    return s


class Report:
    def __init__(self, rows, meta, loads):
        self.rows, self.meta, self.loads = rows, meta, loads
        self.runs = int(meta.get("runs", 1))
        self.targets = []

    def vals(self, w, who, field):
        return [self.rows[(w, who)].get(r, {}).get(field)
                for r in range(1, self.runs + 1)]

    def ok_runs(self, w, who):
        """Runs whose measurement is trustworthy (status ok)."""
        d = self.rows.get((w, who), {})
        return {r for r, v in d.items() if v["status"] == "ok"}

    def ratio(self, w, a, fa, b, fb, fn=None):
        """Per-run ratio a.fa / b.fb (or fn(a_run, b_run)), summarized."""
        out = []
        for r in range(1, self.runs + 1):
            x = self.rows.get((w, a), {}).get(r)
            y = self.rows.get((w, b), {}).get(r)
            if not x or not y:
                continue
            if fn:
                v = fn(x, y)
            elif x[fa] is not None and y[fb]:
                v = x[fa] / y[fb]
            else:
                v = None
            if v is not None:
                out.append(v)
        return stat3(out)

    def status_cell(self, w, who):
        d = self.rows.get((w, who), {})
        bad = [f"run {r}: {v['status']}" for r, v in sorted(d.items())
               if v["status"] != "ok"]
        return "ok" if not bad else "; ".join(bad)

    # ------------------------------------------------------------ tables

    def table_bulk(self, w, title):
        out = [f"### {title}", "",
               "| contender | writer returns, s | × local disk "
               "| all in the bucket, s | × rclone copy "
               "| peak RSS, MiB | CPU, s | check |",
               "|---|---|---|---|---|---|---|---|"]
        for who in ORDER:
            if (w, who) not in self.rows:
                continue
            wr = stat3(self.vals(w, who, "write"))
            bk = stat3(self.vals(w, who, "bucket"))
            rx_local = (self.ratio(w, who, "write", "local", "write")
                        if who not in ("local", "rclone-copy") else None)
            rx_copy = (self.ratio(w, who, "bucket", "rclone-copy",
                                  "bucket")
                       if who not in ("local",) else None)
            out.append(
                f"| {NAMES[who]} | {fmt(wr)} | {fmt(rx_local)} "
                f"| {fmt(bk)} | {fmt(rx_copy)} "
                f"| {fmt(stat3(self.vals(w, who, 'rss')), 1 / 1024, 1)} "
                f"| {fmt(stat3(self.vals(w, who, 'cpu')))} "
                f"| {self.status_cell(w, who)} |")
        return out

    def table_w4(self):
        w = "w4"
        out = ["### W4: read-after-write, 50 rounds of one "
               f"{int(self.meta.get('w4_bytes', 0)) // 1024} KiB JPEG", "",
               "| contender | write+close, ms | read-back median, ms "
               "| read-back worst, ms | all 50 in the bucket, s "
               "| peak RSS, MiB | CPU, s | check |",
               "|---|---|---|---|---|---|---|---|"]
        for who in ORDER:
            if (w, who) not in self.rows:
                continue
            name = NAMES[who]
            if who == "rclone-copy":
                name = "raw S3 PUT, then GET (the upload anchor)"
            out.append(
                f"| {name} "
                f"| {fmt(stat3(self.vals(w, who, 'write')), 1000, 1)} "
                f"| {fmt(stat3(self.vals(w, who, 'rb_med')), 1000, 1)} "
                f"| {fmt(stat3(self.vals(w, who, 'rb_max')), 1000, 1)} "
                f"| {fmt(stat3(self.vals(w, who, 'bucket')))} "
                f"| {fmt(stat3(self.vals(w, who, 'rss')), 1 / 1024, 1)} "
                f"| {fmt(stat3(self.vals(w, who, 'cpu')))} "
                f"| {self.status_cell(w, who)} |")
        return out

    def table_list(self):
        w = "list"
        n = int(self.meta.get("list_files", 0))
        out = [f"### Listing {n:,} objects of one directory "
               "(`ls -f | wc -l`, cold: fresh mount)", "",
               "| contender | time, s | × rclone mount | peak RSS, MiB "
               "| CPU, s | check |", "|---|---|---|---|---|---|"]
        for who in ORDER:
            if (w, who) not in self.rows:
                continue
            rx = self.ratio(w, who, "write", "rclone-mount", "write")
            out.append(
                f"| {NAMES[who]} | {fmt(stat3(self.vals(w, who, 'write')))} "
                f"| {fmt(rx)} "
                f"| {fmt(stat3(self.vals(w, who, 'rss')), 1 / 1024, 1)} "
                f"| {fmt(stat3(self.vals(w, who, 'cpu')))} "
                f"| {self.status_cell(w, who)} |")
        return out

    # ----------------------------------------------------------- targets

    def target(self, what, t, limit, unit="×", higher_ok=False):
        """t: (median, min, max) of the measured ratio or value."""
        if t is None:
            verdict = "**not measured**"
            shown = "n/a"
        else:
            good = t[0] >= limit if higher_ok else t[0] <= limit
            verdict = "met" if good else "**missed**"
            shown = fmt(t, digits=2) + ("" if unit == "×" else f" {unit}")
            if unit == "×":
                shown += "×"
        cmp_ = "≥" if higher_ok else "≤"
        lim = f"{cmp_} {limit:g}{'×' if unit == '×' else ' ' + unit}"
        self.targets.append(f"| {what} | {shown} | {lim} | {verdict} |")

    def all_targets(self):
        m = self.meta
        self.target("W1: blitfs writer returns, × local disk",
                    self.ratio("w1", "blitfs", "write", "local", "write"),
                    1.5)
        self.target("W3: blitfs writer returns, × local disk",
                    self.ratio("w3", "blitfs", "write", "local", "write"),
                    1.5)
        self.target("W2: blitfs writer returns, × local disk",
                    self.ratio("w2", "blitfs", "write", "local", "write"),
                    1.5)
        for w in ("w1", "w2", "w3"):
            self.target(f"{w.upper()}: all in the bucket, blitfs (no write "
                        "limit) × rclone copy",
                        self.ratio(w, "blitfs", "bucket", "rclone-copy",
                                   "bucket"), 1.1)
        files = int(m.get("w1_files", 300))
        ideal = files / 10.0
        self.target(f"W1 at write_rate 10/s: all in the bucket × the ideal "
                    f"{files}/10 = {ideal:g} s",
                    stat3([v / ideal if v else None for v in
                           self.vals("w1", "blitfs-10", "bucket")]), 1.05)
        size = float(m.get("w2_bytes", 512 * MIB))

        def tput(x, y):
            # blitfs uploads from its cache after the close: its upload
            # phase is close to bucket; rclone copy reads and uploads
            # from its start
            if x["bucket"] is None or x["write"] is None or not y["bucket"]:
                return None
            up = x["bucket"] - x["write"]
            if up <= 0:
                return None
            return (size / up) / (size / y["bucket"])
        self.target("W2: upload throughput, blitfs (size ÷ time from the "
                    "writer's return to all in the bucket) ÷ rclone copy's "
                    "(size ÷ its whole time)",
                    self.ratio("w2", "blitfs", None, "rclone-copy", None,
                               tput), 1.0, higher_ok=True)
        rss = stat3(self.vals("w3", "blitfs", "rss"))
        self.target("W3: blitfs daemon peak RSS (VmHWM)",
                    None if rss is None else tuple(v / 1024 for v in rss),
                    64, unit="MiB")
        self.target("W3: blitfs CPU seconds × rclone mount's (the same "
                    "job: serve FUSE and upload)",
                    self.ratio("w3", "blitfs", "cpu", "rclone-mount", "cpu"),
                    1.0)
        self.target("W3: blitfs CPU seconds × rclone copy's",
                    self.ratio("w3", "blitfs", "cpu", "rclone-copy", "cpu"),
                    1.0)

        def rb(field):
            def f(x, y):
                if x[field] is None or y["write"] is None:
                    return None
                return x[field] / (y["write"] + 0.050)
            return f
        self.target("W4: blitfs read-back median × (raw PUT median + 50 ms)",
                    self.ratio("w4", "blitfs", None, "rclone-copy", None,
                               rb("rb_med")), 1.0)
        self.target("W4: blitfs read-back worst × (raw PUT median + 50 ms)",
                    self.ratio("w4", "blitfs", None, "rclone-copy", None,
                               rb("rb_max")), 1.0)
        self.target(f"Listing {int(m.get('list_files', 0)):,} objects: "
                    "blitfs × rclone mount",
                    self.ratio("list", "blitfs", "write", "rclone-mount",
                               "write"), 1.0)

    # ------------------------------------------------------------ report

    def shared_note(self):
        if not self.loads:
            return "no load samples"
        peak = max(x[1] for x in self.loads)
        busy = sum(1 for x in self.loads if x[2] or x[3])
        cores = int(self.meta.get("cores", 1))
        if busy:
            return (f"**the run shared the machine**: other FUSE mounts or "
                    f"test-suite processes were seen at {busy} of "
                    f"{len(self.loads)} measurements, and the 1-minute "
                    f"load average peaked at {peak:.1f} on {cores} cores; "
                    f"absolute times are inflated and noisy, ratios "
                    f"(taken within a run) less so")
        return (f"nothing else was seen running: no other FUSE mount or "
                f"test-suite process at any of the {len(self.loads)} "
                f"measurements; the 1-minute load average, which counts "
                f"the benchmark's own writer, daemon and S3 server, peaked "
                f"at {peak:.1f} on {cores} cores")

    def render(self):
        m = self.meta
        self.all_targets()
        mode = "quick mode (`--quick`)" if m.get("quick") == "1" else \
            "full run"
        mins = int(m.get("elapsed", 0)) / 60
        out = [
            "# blitfs benchmark results", "",
            f"Made by `bench/run.sh` ({mode}) on {m.get('date')}: "
            f"{self.runs} run(s) of every measurement, {mins:.1f} minutes "
            f"in all. Figures: median over the runs, (min–max) beside it "
            f"when they differ. Ratios are taken pair by pair within a run, "
            f"then summarized the same way.", "",
            f"Machine: {m.get('cores')} cores ({m.get('cpu')}), "
            f"{m.get('memory')} memory, {m.get('os')}, Linux "
            f"{m.get('kernel')}; {self.shared_note()}.", "",
            "| contender or tool | version |", "|---|---|",
            f"| blitfs | {m.get('blitfs')} |",
            f"| s3fs | {m.get('s3fs')} |",
            f"| rclone (mount and copy) | {m.get('rclone')} |",
            f"| S3 server | {m.get('s3rver')}, on 127.0.0.1 |",
            f"| aws CLI (checks) | {m.get('awscli')} |",
            f"| ImageMagick (W1/W4 inputs) | {m.get('imagemagick')} |",
            f"| FUSE | {m.get('fuse')} |", "",
            "## Targets", "",
            "| target | measured | limit | result |",
            "|---|---|---|---|",
        ]
        out += self.targets
        unl = m.get("unlimited", "")
        out += ["", "## Workloads", "",
                f"Every contender had {m.get('concurrency')} uploads in "
                f"flight at most (blitfs's default concurrency; rclone "
                f"`--transfers` and `--s3-upload-concurrency`, s3fs "
                f"`parallel_count`). blitfs without a write limit ran with "
                f"`-o {unl}`"
                + (" (this blitfs refuses `write_rate=0`, so the highest "
                   "rate it accepts stands in for no limit)"
                   if unl == "write_rate=10000" else "") + ". ", ""]
        w1b = int(m.get("w1_bytes", 0))
        out += self.table_bulk(
            "w1", f"W1: {m.get('w1_files')} JPEGs of "
            f"{m.get('w1_sizes', '?').replace('-', '–')} bytes "
            f"({w1b / MIB:.1f} MiB), `cp -r` into the mount")
        out += [""]
        out += self.table_bulk(
            "w2", f"W2: one {int(m.get('w2_bytes', 0)) // MIB} MiB file")
        out += [""]
        out += self.table_bulk(
            "w3", f"W3: {int(m.get('w3_files', 0)):,} files of about 30 KiB "
            f"in 100 directories ({int(m.get('w3_bytes', 0)) / MIB:.0f} MiB)")
        out += [""]
        out += self.table_w4()
        out += [""]
        out += self.table_list()
        out += ["", "## How it was measured", "",
                "- *writer returns*: wall time of the writing command "
                "(`cp -r` into the mount or the local directory; `rclone "
                "copy` for the anchor). W4: the median write+close of one "
                "round.",
                "- *all in the bucket*: from the start of the writer until "
                "a ListObjectsV2 poller (started with the writer, the same "
                "for every contender) saw every key with its size; then "
                "`aws s3api list-objects-v2` checked keys and sizes once "
                "more (column *check*).",
                "- *peak RSS, CPU*: the daemon's VmHWM and utime+stime from "
                "/proc, read after the bucket was complete and before the "
                "unmount (for `rclone copy`, the kernel's rusage of the "
                "command).",
                "- *W4*: write a 100 KiB JPEG into the mount and read it "
                "straight back, 50 times; the anchor PUTs and GETs the "
                "same bytes with a minimal SigV4 client on one keep-alive "
                "connection.",
                "- *listing*: a fresh mount each time; the objects were put "
                "through the S3 API with `rclone copy`.",
                ""]
        return "\n".join(out)


def main():
    work, dest = sys.argv[1], sys.argv[2]
    rows, meta, loads = load(work)
    text = Report(rows, meta, loads).render()
    print(text)
    with open(dest, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
