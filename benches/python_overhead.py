"""The quickstart from Python vs from the shell: what the datafusion-ffi boundary costs.

The same statements (sql/quickstart.sql's steps 0-3: near_duplicates, token_count +
quality_score + embed, kmeans_fit k=16, diversity_cluster, samplemix_weights; centroids by
Parquet path in both) run
- in the samplemix shell (`samplemix -q -f steps.sql`), and
- in datafusion-python 55 with `samplemix.register(ctx)` (a fresh `python3` process: import,
  register, the statements),
on the sample (860 documents, budget 640,000 tokens) and on the shared corpus (12,036
documents, budget 10,337,630 = its o200k_base tokens). Wall time of each whole process, median
of --reps; shell and extension of one build (--profile release or debug) of the same commit:
the extension is that build's `lib_samplemix.so`, staged next to python/samplemix/ as
scripts/test.sh does, unless --installed is given.

Usage: python3 benches/python_overhead.py [--target DIR] [--profile release|debug] [--corpus PATH] [--reps 3] [--installed]
Needs: cargo build [--release] --workspace --features ballista; pip install datafusion==55.0.0 pyarrow
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.abspath(os.path.join(here, ".."))
ap = argparse.ArgumentParser()
ap.add_argument("--target", default=os.environ.get("CARGO_TARGET_DIR", os.path.join(root, "target")))
ap.add_argument("--corpus", default=os.path.join(root, "../shared/data/corpus.parquet"))
ap.add_argument("--reps", type=int, default=3)
ap.add_argument("--profile", default="release", choices=["release", "debug"])
ap.add_argument("--installed", action="store_true", help="use the pip-installed samplemix package")
args = ap.parse_args()

work = tempfile.mkdtemp(prefix="samplemix-pyoverhead-")
env = dict(os.environ)
if not args.installed:
    pkg = os.path.join(work, "pkg", "samplemix")
    os.makedirs(pkg)
    for f in os.listdir(os.path.join(root, "python", "samplemix")):
        if f.endswith(".py"):
            shutil.copy(os.path.join(root, "python", "samplemix", f), pkg)
    shutil.copy(os.path.join(args.target, args.profile, "lib_samplemix.so"), os.path.join(pkg, "_samplemix.abi3.so"))
    env["PYTHONPATH"] = os.path.join(work, "pkg")
shell = os.path.join(args.target, args.profile, "samplemix")


def statements(corpus: str, budget: int, centroids: str) -> list[str]:
    return [
        f"CREATE EXTERNAL TABLE corpus STORED AS PARQUET LOCATION '{corpus}'",
        "CREATE TABLE dedup AS SELECT * FROM near_duplicates(corpus, 'id', 'text')",
        "CREATE TABLE docs AS SELECT id, domain, text, token_count(text) AS tokens, quality_score(text) AS quality, "
        "embed(text) AS emb FROM corpus WHERE id IN (SELECT id FROM dedup WHERE keep)",
        "CREATE TABLE centroids AS SELECT * FROM kmeans_fit(docs, 'emb', 16, 100000, 0)",
        f"COPY centroids TO '{centroids}' STORED AS PARQUET",
        "CREATE TABLE scored AS SELECT id, quality, dc['cluster'] AS cluster, dc['distance'] AS distance, tokens "
        f"FROM (SELECT id, quality, tokens, diversity_cluster(emb, '{centroids}') AS dc FROM docs)",
        f"CREATE TABLE weights AS SELECT * FROM samplemix_weights(scored, centroids, 0.8, 0.2, {budget}, 0, 'tokens', "
        "'mean', 'rounding=systematic, max_copies=4, min_cluster_size=5')",
        f"COPY (SELECT id, count FROM weights ORDER BY id) TO '{centroids}.counts.csv' STORED AS CSV",
    ]


def timed(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, cwd=root, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


print(f"profile: {args.profile}; CPU: {open('/proc/cpuinfo').read().split('model name')[1].split(':')[1].splitlines()[0].strip()}, "
      f"{os.cpu_count()} cores")
for name, corpus, budget in [("sample (860 docs)", os.path.join(root, "data/sample.parquet"), 640_000),
                             ("shared corpus (12,036 docs)", os.path.abspath(args.corpus), 10_337_630)]:
    runs = {}
    for kind in ("shell", "python"):
        centroids = os.path.join(work, f"{kind}-centroids.parquet")
        steps = statements(corpus, budget, centroids)
        if kind == "shell":
            path = os.path.join(work, "steps.sql")
            open(path, "w").write(";\n".join(steps) + ";\n")
            cmd = [shell, "-q", "-f", path]
        else:
            program = ("from datafusion import SessionContext\nimport samplemix\nctx = SessionContext()\n"
                       "samplemix.register(ctx)\n" + "".join(f"ctx.sql({s!r}).collect()\n" for s in steps))
            cmd = [sys.executable, "-c", program]
        runs[kind] = [timed(cmd) for _ in range(args.reps)]
    same = open(os.path.join(work, "shell-centroids.parquet.counts.csv")).read() == \
        open(os.path.join(work, "python-centroids.parquet.counts.csv")).read()
    s, p = statistics.median(runs["shell"]), statistics.median(runs["python"])
    print(f"{name}: shell {s:.2f} s, python {p:.2f} s (+{p - s:.2f} s, {p / s:.2f}x); "
          f"runs shell {[round(x, 2) for x in runs['shell']]}, python {[round(x, 2) for x in runs['python']]}; "
          f"counts identical: {same}")
shutil.rmtree(work)
