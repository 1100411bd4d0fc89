#!/usr/bin/python3
"""gen-data.py - make the benchmark's input files (stdlib + ImageMagick).

    gen-data.py OUT W3_FILES LIST_FILES

Makes, under OUT (each part only if its stamp file does not already
name the same parameters, so a second run reuses the data).  Each
workload is a directory named like the prefix it gets in the bucket, so
that `cp -r DIR MNT/` and `rclone copy DIR remote:bucket/NAME` give the
same keys:
  w1/          300 JPEGs of 50-150 KiB, cut and scaled from the
               photographs of mate-backgrounds: real photographic
               content, with the sizes a real pipeline writes
  w2/big.bin   one 512 MiB file (seeded pseudo-random bytes)
  w3-N/w3/     N files of about 30 KiB (29-31 KiB) in 100 directories
               (pseudo-random bytes: 10,000 ImageMagick runs would take
               longer than the whole benchmark)
  w4.jpg       one JPEG of about 100 KiB (the read-after-write probe)
  list-N/list/ N files of 16 bytes, to populate the listing bucket
               through the S3 API (rclone copy)

Everything is seeded: two runs make the same bytes.
"""
import concurrent.futures
import os
import random
import subprocess
import sys

CONVERT = "/usr/bin/convert"   # not /usr/local/bin's stand-in
SRC = "/usr/share/backgrounds/mate"
KIB = 1024


def photographs():
    """The photographs of mate-backgrounds (JPEGs; the PNGs are
    drawings).  The two big Elephants copies are the same picture."""
    out = []
    for root, _dirs, files in os.walk(SRC):
        for f in files:
            if f.endswith(".jpg") and "Elephants_" not in f:
                out.append(os.path.join(root, f))
    return sorted(out)


def size_of(path):
    return os.path.getsize(path)


def one_jpeg(job):
    """Crop a random part of a photograph, scale it and encode it with
    jpeg:extent (ImageMagick searches the quality that fits the target
    size); widen the picture until it is at least lo bytes."""
    src, dst, seed, lo, hi = job
    rnd = random.Random(seed)
    target = rnd.randint(lo + 5 * KIB, hi - 5 * KIB)
    frac = rnd.uniform(0.6, 1.0)
    gx, gy = rnd.random(), rnd.random()
    width = rnd.randint(900, 1300)
    tmp = dst + ".tmp"
    for _ in range(6):
        # a window of pct% of the photograph, placed by gravity: nine
        # places, so the 300 pictures are 300 different cuts
        grav = ["NorthWest", "North", "NorthEast", "West", "Center",
                "East", "SouthWest", "South", "SouthEast"][
                    int(gx * 3) + 3 * int(gy * 3)]
        pct = int(frac * 100)
        subprocess.run(
            [CONVERT, src, "-strip", "-gravity", grav,
             "-crop", f"{pct}%x{pct}%+0+0", "+repage",
             "-resize", f"{width}x", "-quality", "92",
             "-define", f"jpeg:extent={target // KIB}KB", "jpg:" + tmp],
            check=True)
        n = size_of(tmp)
        if lo <= n <= hi:
            os.replace(tmp, dst)
            return n
        # too small: the picture is too smooth at this width
        width = int(width * 1.35)
    os.unlink(tmp)
    raise RuntimeError(f"{src}: no JPEG of {lo}-{hi} bytes")


def make_jpegs(out, n, lo, hi, seed):
    srcs = photographs()
    if not srcs:
        sys.exit("gen-data: no photographs in " + SRC +
                 " (apt-get install mate-backgrounds)")
    os.makedirs(out, exist_ok=True)
    jobs = [(srcs[i % len(srcs)], os.path.join(out, f"img{i:04d}.jpg"),
             seed * 100003 + i, lo, hi) for i in range(n)]
    with concurrent.futures.ThreadPoolExecutor(os.cpu_count()) as ex:
        sizes = list(ex.map(one_jpeg, jobs))
    return sizes


def random_file(path, size, seed):
    rnd = random.Random(seed)
    with open(path, "wb") as f:
        left = size
        while left:
            k = min(left, 8 << 20)
            f.write(rnd.randbytes(k))
            left -= k


def stamped(out, name, params, make):
    """Run make() unless OUT/.NAME.stamp already holds params."""
    stamp = os.path.join(out, f".{name}.stamp")
    try:
        with open(stamp) as f:
            if f.read() == params:
                return
    except FileNotFoundError:
        pass
    print(f"gen-data: making {name} ({params})", flush=True)
    make()
    with open(stamp, "w") as f:
        f.write(params)


def main():
    out, w3_files, list_files = sys.argv[1], int(sys.argv[2]), \
        int(sys.argv[3])
    os.makedirs(out, exist_ok=True)

    def w1():
        subprocess.run(["rm", "-rf", os.path.join(out, "w1")], check=True)
        s = make_jpegs(os.path.join(out, "w1"), 300, 50 * KIB, 150 * KIB, 1)
        print(f"gen-data: w1: {len(s)} JPEGs, {min(s)}-{max(s)} bytes")

    def w2():
        os.makedirs(os.path.join(out, "w2"), exist_ok=True)
        random_file(os.path.join(out, "w2", "big.bin"), 512 << 20, 2)

    w3_top = os.path.join(out, f"w3-{w3_files}")
    list_top = os.path.join(out, f"list-{list_files}")

    def w3():
        d = os.path.join(w3_top, "w3")
        subprocess.run(["rm", "-rf", d], check=True)
        rnd = random.Random(3)
        for i in range(w3_files):
            sub = os.path.join(d, f"d{i % 100:03d}")
            os.makedirs(sub, exist_ok=True)
            n = rnd.randint(29 * KIB, 31 * KIB)
            with open(os.path.join(sub, f"f{i:05d}.dat"), "wb") as f:
                f.write(rnd.randbytes(n))

    def w4():
        make_jpegs(os.path.join(out, "w4tmp"), 1, 95 * KIB, 105 * KIB, 4)
        os.replace(os.path.join(out, "w4tmp", "img0000.jpg"),
                   os.path.join(out, "w4.jpg"))
        os.rmdir(os.path.join(out, "w4tmp"))

    def listing():
        d = os.path.join(list_top, "list")
        subprocess.run(["rm", "-rf", d], check=True)
        os.makedirs(d)
        for i in range(list_files):
            with open(os.path.join(d, f"o{i:06d}"), "wb") as f:
                f.write(b"%015d\n" % i)

    stamped(out, "w1", "300 jpegs 50-150KiB v1", w1)
    stamped(out, "w2", "512MiB v1", w2)
    os.makedirs(w3_top, exist_ok=True)
    stamped(w3_top, "w3", f"{w3_files} files v1", w3)
    stamped(out, "w4", "100KiB jpeg v1", w4)
    os.makedirs(list_top, exist_ok=True)
    stamped(list_top, "list", f"{list_files} files v1", listing)


if __name__ == "__main__":
    main()
