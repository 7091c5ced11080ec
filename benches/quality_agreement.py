"""Agreement of samplemix's quality_signals pass/fail with datatrove 0.10.1's filters.

Runs GopherQualityFilter, GopherRepetitionFilter, C4QualityFilter and FineWebQualityFilter
(datatrove, PyPI) and `quality_signals(text)` (the samplemix shell) on the same documents of
../shared/data/corpus.parquet and prints the agreement per rule set, with the disagreements.

Usage: python3 benches/quality_agreement.py [--docs 2000] [--corpus PATH] [--bin PATH]
Needs: pip install 'datatrove==0.10.1' spacy pyarrow; cargo build --release
"""
import argparse
import csv
import hashlib
import io
import os
import subprocess
import sys
import tempfile

import pyarrow as pa
import pyarrow.parquet as pq

ap = argparse.ArgumentParser()
ap.add_argument("--docs", type=int, default=2000)
ap.add_argument("--corpus", default=os.path.join(os.path.dirname(__file__), "../../shared/data/corpus.parquet"))
ap.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "../target/release/samplemix"))
ap.add_argument("--show", type=int, default=5, help="disagreements to print per rule set")
args = ap.parse_args()

from datatrove.data import Document
from datatrove.pipeline.filters import (
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
)

table = pq.read_table(args.corpus)
rows = table.to_pylist()
# Deterministic sample: smallest md5(id), so every domain is represented in proportion.
rows.sort(key=lambda r: hashlib.md5(r["id"].encode()).hexdigest())
rows = rows[: args.docs]

tmp = tempfile.mkdtemp()
path = os.path.join(tmp, "docs.parquet")
pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), path)
sql = (
    "SELECT id, s['gopher_quality_pass'] AS gq, s['gopher_repetition_pass'] AS gr, "
    "s['c4_pass'] AS c4, s['fineweb_pass'] AS fw "
    f"FROM (SELECT id, quality_signals(text) AS s FROM '{path}')"
)
out = subprocess.run([args.bin, "-q", "--format", "csv", "--maxrows", "inf", "-c", sql],
                     check=True, capture_output=True, text=True).stdout
ours = {r["id"]: r for r in csv.DictReader(io.StringIO(out))}

filters = {
    "gopher_quality": (GopherQualityFilter(), "gq"),
    "gopher_repetition": (GopherRepetitionFilter(), "gr"),
    "c4": (C4QualityFilter(), "c4"),
    "fineweb": (FineWebQualityFilter(), "fw"),
}
agree = {k: 0 for k in filters}
passed = {k: [0, 0] for k in filters}
diffs = {k: [] for k in filters}
for r in rows:
    for name, (f, col) in filters.items():
        doc = Document(text=r["text"], id=r["id"])  # C4 rewrites doc.text: fresh copy each time
        res = f.filter(doc)
        ref = res is True
        reason = "" if ref else (res[1] if isinstance(res, tuple) else "")
        mine = ours[r["id"]][col] == "true"
        passed[name][0] += ref
        passed[name][1] += mine
        if ref == mine:
            agree[name] += 1
        else:
            diffs[name].append((r["id"], ref, mine, reason))

n = len(rows)
print(f"documents: {n} (md5(id)-ordered sample of {args.corpus})")
print(f"{'rule set':<20} {'agreement':>10} {'datatrove pass':>15} {'samplemix pass':>15}")
worst = 1.0
for name in filters:
    a = agree[name] / n
    worst = min(worst, a)
    print(f"{name:<20} {100 * a:>9.2f}% {passed[name][0]:>15} {passed[name][1]:>15}")
for name in filters:
    for d in diffs[name][: args.show]:
        print(f"  {name}: {d[0]} datatrove={'pass' if d[1] else 'fail'} ({d[3]}) samplemix={'pass' if d[2] else 'fail'}")
sys.exit(0 if worst >= 0.99 else 1)
