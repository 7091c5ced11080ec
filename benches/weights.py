"""samplemix_weights at scale vs DuckDB and vs one aggregate scan (release build).

Generates 10M scored rows and K = 1024 centroids (d = 64) as Parquet (once, with DuckDB),
then times, each as its own process on the same files with 2 threads:
  1. samplemix: SELECT sum(count), sum(expected_count) FROM samplemix_weights(...)
  2. samplemix: one aggregate scan, SELECT cluster, avg(distance), count(*) ... GROUP BY cluster
  3. DuckDB 2.x: the same weights computation in DuckDB SQL (its own hash for u(x))
and prints wall time and peak RSS of each, and the ratios.

Single runs of these sub-second queries scatter (±20% on a shared VM): --reps N times samplemix
and the scan N times each, alternated, and prints the medians; --baseline PATH adds another build,
alternated with --bin in the same loop (to compare two versions in one sitting). DuckDB runs once.

Usage: python3 benches/weights.py [--rows 10000000] [--dir /tmp/samplemix-bench] [--bin PATH]
                                  [--reps N] [--baseline PATH]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("--rows", type=int, default=10_000_000)
ap.add_argument("--k", type=int, default=1024)
ap.add_argument("--dir", default="/tmp/samplemix-bench")
ap.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "../target/release/samplemix"))
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--reps", type=int, default=1)
ap.add_argument("--baseline", default=None)
args = ap.parse_args()
os.makedirs(args.dir, exist_ok=True)
scored = os.path.join(args.dir, f"scored_{args.rows}.parquet")
cents = os.path.join(args.dir, f"centroids_{args.k}.parquet")

import duckdb

if not os.path.exists(scored) or not os.path.exists(cents):
    con = duckdb.connect()
    con.execute("SELECT setseed(0.42)")
    con.execute(f"""COPY (
        SELECT 'doc-' || i::VARCHAR AS id,
               round(random() * 10, 3) AS quality,
               CAST(floor(pow(random(), 2) * {args.k}) AS INTEGER) AS cluster,
               random() * 0.8 AS distance,
               CAST(50 + floor(random() * 4000) AS BIGINT) AS tokens
        FROM range({args.rows}) t(i)) TO '{scored}' (FORMAT PARQUET, ROW_GROUP_SIZE 122880)""")
    con.execute(f"""COPY (
        SELECT CAST(c AS INTEGER) AS cluster, CAST(1 AS BIGINT) AS size,
               list_transform(range(64), lambda j: CAST(random() - 0.5 AS FLOAT)) AS centroid,
               'cosine' AS metric
        FROM range({args.k}) t(c)) TO '{cents}' (FORMAT PARQUET)""")


def timed(cmd, env=None):
    # Wall time from this process's clock (/usr/bin/time reports only hundredths of a second,
    # 10% of a 0.1 s scan); /usr/bin/time for the peak RSS.
    start = time.perf_counter()
    out = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True, env=env)
    secs = time.perf_counter() - start
    if out.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{out.stderr[-3000:]}")
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", out.stderr).group(1))
    return secs, rss_kb / 1024, out.stdout


env = dict(os.environ, DATAFUSION_EXECUTION_TARGET_PARTITIONS=str(args.threads))
setup = [
    "-c", f"CREATE EXTERNAL TABLE scored STORED AS PARQUET LOCATION '{scored}'",
    "-c", f"CREATE EXTERNAL TABLE centroids STORED AS PARQUET LOCATION '{cents}'",
]
weights_sql = "SELECT sum(count) AS copies, sum(expected_count) AS expected FROM samplemix_weights(scored, centroids, 0.8, 0.2, 1e10, 0, 'documents')"
scan_sql = "SELECT count(*), sum(a), sum(n) FROM (SELECT cluster, avg(distance) AS a, count(*) AS n FROM scored GROUP BY cluster)"
runs = {"samplemix": [], "scan": [], "baseline": []}
for _ in range(args.reps):
    if args.baseline:
        runs["baseline"].append(timed([args.baseline, "-q", "--format", "csv"] + setup + ["-c", weights_sql], env))
    runs["samplemix"].append(timed([args.bin, "-q", "--format", "csv"] + setup + ["-c", weights_sql], env))
    runs["scan"].append(timed([args.bin, "-q", "--format", "csv"] + setup + ["-c", scan_sql], env))


def median_run(name):
    # The run with the median time (the upper one of an even count), so its RSS and output go with it.
    ordered = sorted(runs[name], key=lambda r: r[0])
    return ordered[len(ordered) // 2]


sm, scan = median_run("samplemix"), median_run("scan")

duck_sql = f"""
SET threads = {args.threads};
CREATE VIEW scored AS SELECT * FROM '{scored}';
CREATE VIEW centroids AS SELECT * FROM '{cents}';
WITH sep AS (
  SELECT a.cluster AS cl, avg(1 - list_cosine_similarity(a.centroid, b.centroid)) AS sep
  FROM centroids a JOIN centroids b ON a.cluster <> b.cluster GROUP BY 1),
known AS (SELECT c.cluster AS cl, coalesce(sep.sep, 0.0) AS sep FROM centroids c LEFT JOIN sep ON c.cluster = sep.cl),
per_cluster AS (
  SELECT cluster AS cl, count(*) AS n, sum(tokens) AS t, avg(distance) AS comp, min(quality) AS qmin_j, max(quality) AS qmax_j
  FROM scored GROUP BY 1),
g AS (
  SELECT p.*, k.sep, sum(n) OVER () AS gn, sum(t) OVER () AS gt, min(qmin_j) OVER () AS gqmin, max(qmax_j) OVER () AS gqmax,
         min(CASE WHEN comp > 0 THEN comp END) OVER () AS gcmin
  FROM per_cluster p JOIN known k ON p.cl = k.cl),
d AS (SELECT *, sep / CASE WHEN comp > 0 THEN comp ELSE coalesce(gcmin, 1.0) END AS div FROM g),
dn AS (SELECT *, CASE WHEN max(div) OVER () > min(div) OVER () THEN (div - min(div) OVER ()) / (max(div) OVER () - min(div) OVER ()) ELSE 0 END AS dnorm FROM d),
clusters AS (SELECT *, max(0.8 * dnorm + 0.2 * CASE WHEN gqmax > gqmin THEN (qmax_j - gqmin) / (gqmax - gqmin) ELSE 0 END) OVER () AS gwmax FROM dn),
weighted AS (
  SELECT s.id, c.gn, c.gt,
         exp((0.8 * c.dnorm + 0.2 * CASE WHEN c.gqmax > c.gqmin THEN (s.quality - c.gqmin) / (c.gqmax - c.gqmin) ELSE 0 END - c.gwmax) / 0.2) AS e
  FROM clusters c JOIN scored s ON c.cl = s.cluster),
z AS (SELECT sum(e) AS z FROM weighted),
counted AS (SELECT w.id, w.gn::DOUBLE * 1e10 / w.gt::DOUBLE * w.e / z.z AS c FROM weighted w, z)
SELECT sum(CAST(floor(c) AS BIGINT) + CASE WHEN (hash(id) >> 11)::DOUBLE / 9007199254740992.0 < c - floor(c) THEN 1 ELSE 0 END) AS copies,
       sum(c) AS expected
FROM counted;
"""
duck_script = os.path.join(args.dir, "duck.py")
with open(duck_script, "w") as f:
    f.write("import duckdb, sys\ncon = duckdb.connect()\nres = None\nfor stmt in sys.stdin.read().split(';'):\n    if stmt.strip():\n        res = con.execute(stmt).fetchall()\nprint(res)\n")
duck = subprocess.run(["/usr/bin/time", "-v", sys.executable, duck_script], input=duck_sql, capture_output=True, text=True)
if duck.returncode != 0:
    sys.exit(duck.stderr[-3000:])
dwall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", duck.stderr).group(1)
dsecs = sum(float(p) * 60 ** i for i, p in enumerate(reversed(dwall.split(":"))))
drss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", duck.stderr).group(1)) / 1024

result = {
    "rows": args.rows, "k": args.k, "threads": args.threads,
    "samplemix_weights_s": round(sm[0], 2), "samplemix_weights_peak_rss_mb": round(sm[1]),
    "one_scan_s": round(scan[0], 2), "one_scan_peak_rss_mb": round(scan[1]),
    "duckdb_s": round(dsecs, 2), "duckdb_peak_rss_mb": round(drss),
    "weights_vs_scan": round(sm[0] / scan[0], 2), "duckdb_vs_samplemix": round(dsecs / sm[0], 2),
    "samplemix_result": sm[2].strip().splitlines()[-1], "duckdb_result": duck.stdout.strip(),
}
if args.reps > 1:
    result["reps"] = args.reps
    result["samplemix_all_s"] = [round(r[0], 3) for r in runs["samplemix"]]
    result["one_scan_all_s"] = [round(r[0], 3) for r in runs["scan"]]
if args.baseline:
    base = median_run("baseline")
    result["baseline_s"] = round(base[0], 3)
    result["baseline_vs_scan"] = round(base[0] / scan[0], 2)
    result["baseline_all_s"] = [round(r[0], 3) for r in runs["baseline"]]
    result["baseline_result"] = base[2].strip().splitlines()[-1]
print(json.dumps(result))
