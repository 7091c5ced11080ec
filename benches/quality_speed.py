"""quality_score speed per core: SQL over a Parquet corpus on one partition (release build).

    python3 benches/quality_speed.py --bin target/release/samplemix [--baseline OTHER] [--reps 7]

Runs `SELECT sum(quality_score(text))` with DATAFUSION_EXECUTION_TARGET_PARTITIONS=1 (one core;
Parquet read and shell start included), alternating the builds given so that a drifting VM
slows both alike, and prints each build's median and minimum wall time, MB/s of UTF-8 text, and
its sum of scores (builds that compute the same signals print the same sum). A plain scan of the
same column (`sum(length(text))`) is timed alongside: the part of the time that is not scoring.
"""
import argparse
import os
import statistics
import subprocess
import time

ap = argparse.ArgumentParser()
ap.add_argument("--bin", required=True)
ap.add_argument("--baseline", action="append", default=[], help="another build (repeatable)")
ap.add_argument("--corpus", default="../shared/data/corpus.parquet")
ap.add_argument("--reps", type=int, default=7)
args = ap.parse_args()

corpus = os.path.abspath(args.corpus)
env = dict(os.environ, DATAFUSION_EXECUTION_TARGET_PARTITIONS="1")
setup = f"CREATE EXTERNAL TABLE corpus STORED AS PARQUET LOCATION '{corpus}'"


def run(binary, expr):
    start = time.perf_counter()
    out = subprocess.run([binary, "-q", "--format", "csv", "-c", setup, "-c",
                          f"SELECT {expr} FROM corpus"],
                         env=env, capture_output=True, text=True, check=True).stdout
    return time.perf_counter() - start, out.split()[-1]


_, text_bytes = run(args.bin, "sum(octet_length(text))")
mb = int(text_bytes) / 1e6
builds = [args.bin] + args.baseline
times = {b: [] for b in builds + ["scan"]}
sums = {}
for _ in range(args.reps):
    for b in builds:
        secs, sums[b] = run(b, "sum(quality_score(text))")
        times[b].append(secs)
    times["scan"].append(run(args.bin, "sum(length(text))")[0])

print(f"corpus {corpus}: {mb:.1f} MB of text, {args.reps} alternated runs, 1 partition")
for b in builds + ["scan"]:
    med = statistics.median(times[b])
    label = "scan only (" + os.path.basename(args.bin) + ")" if b == "scan" else b
    score = "" if b == "scan" else f"  {mb / med:5.1f} MB/s  sum {sums[b]}"
    print(f"{label}: median {med:.3f} s, min {min(times[b]):.3f} s{score}")
