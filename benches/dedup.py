"""near_duplicates vs datatrove 0.10.1's MinHash dedup, same shingles and hash count.

Input: the shared corpus plus generated near-duplicates (edited copies of every 6th document:
words deleted or swapped, case and whitespace changed, a boilerplate line added, the end cut),
written once to DIR/dedup_input.parquet (id, text). Then, each in its own process:
  1. datatrove signatures: MinhashDedupSignature (MinhashConfig: 5-gram words, 14 buckets x 8
     hashes = 112, 64-bit xxhash, its defaults) on one task, MB/s per core (the figure next to ours comes
     from `cargo bench -p samplemix-udfs --bench kernels -- text`, "minhash");
  2. datatrove end to end: signatures, buckets, cluster, filter stages (LocalPipelineExecutor,
     1 worker), wall time, and the ids it removes;
  3. samplemix end to end: COPY (SELECT * FROM near_duplicates(...)) with 1 and 2 threads,
     wall time, and the ids with keep = false;
and prints the agreement of the two removed sets.

Usage: python3 benches/dedup.py [--corpus ../shared/data/corpus.parquet] [--dir /tmp/samplemix-bench]
       [--bin target/release/samplemix]
Needs: pip install "datatrove==0.10.1" tokenizers "xxhash<4" spacy pyarrow  (xxhash 4 refuses the str
datatrove 0.10.1 passes it)
"""
import argparse
import glob
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq

from textedit import edit

ap = argparse.ArgumentParser()
here = os.path.dirname(os.path.abspath(__file__))
ap.add_argument("--corpus", default=os.path.join(here, "../../shared/data/corpus.parquet"))
ap.add_argument("--dir", default="/tmp/samplemix-bench")
ap.add_argument("--bin", default=os.path.join(here, "../target/release/samplemix"))
args = ap.parse_args()
work = os.path.join(args.dir, "dedup")
os.makedirs(work, exist_ok=True)
inp = os.path.join(work, "dedup_input.parquet")

if not os.path.exists(inp):
    t = pq.read_table(args.corpus, columns=["id", "text"]).to_pylist()
    rng = random.Random(42)
    rows = [r for r in t if r["text"] is not None]
    extra = []
    for j, r in enumerate(rows[::6]):
        if len(r["text"].split()) >= 40:
            extra.append({"id": f"zz-copy-{j:05d}-of-{r['id']}", "text": edit(r["text"], j % 6, rng)})
    pq.write_table(pa.Table.from_pylist(rows + extra), inp, row_group_size=2000)
size = sum(len(s.encode()) for s in pq.read_table(inp, columns=["text"]).column("text").to_pylist())
n_docs = pq.read_metadata(inp).num_rows
cpu = re.search(r"model name\s*:\s*(.*)", open("/proc/cpuinfo").read()).group(1)
isa = "AVX-512" if "avx512f" in open("/proc/cpuinfo").read() else "AVX2"
print(json.dumps({"input": inp, "docs": n_docs, "bytes": size, "cpu": cpu, "isa": isa}))


def run_datatrove():
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.readers import ParquetReader
    from datatrove.pipeline.writers import JsonlWriter
    from datatrove.utils.hashing import HashConfig

    dt = os.path.join(work, "datatrove")
    shutil.rmtree(dt, ignore_errors=True)
    config = MinhashConfig(hash_config=HashConfig(precision=64), num_buckets=14, hashes_per_bucket=8, n_grams=5)
    reader = lambda: ParquetReader(work, glob_pattern="dedup_input.parquet", text_key="text", id_key="id")
    times = {}
    start = time.perf_counter()
    LocalPipelineExecutor(
        pipeline=[reader(), MinhashDedupSignature(output_folder=f"{dt}/sigs", config=config)],
        tasks=1, workers=1, logging_dir=f"{dt}/logs/1", skip_completed=False,
    ).run()
    times["signatures"] = time.perf_counter() - start
    t = time.perf_counter()
    LocalPipelineExecutor(
        pipeline=[MinhashDedupBuckets(input_folder=f"{dt}/sigs", output_folder=f"{dt}/buckets", config=config)],
        tasks=config.num_buckets, workers=1, logging_dir=f"{dt}/logs/2", skip_completed=False,
    ).run()
    LocalPipelineExecutor(
        pipeline=[MinhashDedupCluster(input_folder=f"{dt}/buckets", output_folder=f"{dt}/remove", config=config)],
        tasks=1, workers=1, logging_dir=f"{dt}/logs/3", skip_completed=False,
    ).run()
    LocalPipelineExecutor(
        pipeline=[
            reader(),
            MinhashDedupFilter(input_folder=f"{dt}/remove", exclusion_writer=JsonlWriter(f"{dt}/removed", compression=None)),
            JsonlWriter(f"{dt}/kept", compression=None),
        ],
        tasks=1, workers=1, logging_dir=f"{dt}/logs/4", skip_completed=False,
    ).run()
    times["total"] = time.perf_counter() - start
    removed = set()
    for f in glob.glob(f"{dt}/removed/*"):
        for line in open(f):
            removed.add(json.loads(line)["id"])
    return times, removed


def run_samplemix(threads):
    out = os.path.join(work, f"samplemix_{threads}.parquet")
    env = dict(os.environ, DATAFUSION_EXECUTION_TARGET_PARTITIONS=str(threads))
    cmd = [args.bin, "-q", "-c",
           f"COPY (SELECT id, group_id, keep FROM near_duplicates('{inp}', 'id', 'text')) TO '{out}' STORED AS PARQUET"]
    start = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    secs = time.perf_counter() - start
    if r.returncode != 0:
        sys.exit(r.stderr)
    t = pq.read_table(out).to_pylist()
    return secs, {row["id"] for row in t if not row["keep"]}


for threads in (1, 2):
    secs, ours = run_samplemix(threads)
    print(json.dumps({"bench": "samplemix_near_duplicates", "threads": threads, "secs": round(secs, 2), "removed": len(ours)}))
times, theirs = run_datatrove()
sig_mb = size / 1e6 / times["signatures"]
print(json.dumps({"bench": "datatrove_minhash_signature_stage", "threads": 1, "secs": round(times["signatures"], 2), "mb_per_s_per_core": round(sig_mb, 3)}))
print(json.dumps({"bench": "datatrove_minhash_dedup_4_stages", "threads": 1, "secs": round(times["total"], 2), "removed": len(theirs)}))
both = ours & theirs
print(json.dumps({
    "agreement": "removed ids",
    "samplemix": len(ours), "datatrove": len(theirs), "both": len(both),
    "only_samplemix": len(ours - theirs), "only_datatrove": len(theirs - ours),
    "jaccard_of_removed_sets": round(len(both) / max(1, len(ours | theirs)), 4),
    "copies_removed_by_samplemix": sum(1 for i in ours if i.startswith("zz-copy")),
    "copies_removed_by_datatrove": sum(1 for i in theirs if i.startswith("zz-copy")),
    "copies": sum(1 for _ in pq.read_table(inp, columns=["id"]).column("id").to_pylist() if _.startswith("zz-copy")),
}))
for i in sorted(ours - theirs)[:5]:
    print("only samplemix:", i)
for i in sorted(theirs - ours)[:5]:
    print("only datatrove:", i)
