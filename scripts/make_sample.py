"""Rebuild data/sample.parquet from ../shared/data/corpus.parquet.

A deterministic stratified subset: per domain, the documents whose md5(id) is smallest.
Run: python3 scripts/make_sample.py [path/to/corpus.parquet]
"""
import hashlib
import sys

import pyarrow as pa
import pyarrow.parquet as pq

PER_DOMAIN = {
    "ArXiv": 400,
    "StackExchange": 200,
    "Reviews": 150,
    "GitHub": 60,
    "Wikipedia": 30,
    "Speeches": 12,
    "Book": 8,
}
MAX_CHARS = 60_000  # keeps one huge file from eating the size budget

src = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/corpus.parquet"
t = pq.read_table(src)
rows = t.to_pylist()
rows = [r for r in rows if len(r["text"]) <= MAX_CHARS]
rows.sort(key=lambda r: hashlib.md5(r["id"].encode()).hexdigest())
taken = {d: 0 for d in PER_DOMAIN}
out = []
for r in rows:
    if taken[r["domain"]] < PER_DOMAIN[r["domain"]]:
        taken[r["domain"]] += 1
        out.append(r)
out.sort(key=lambda r: r["id"])
tbl = pa.Table.from_pylist(out, schema=t.schema)
pq.write_table(tbl, "data/sample.parquet", compression="zstd", row_group_size=256)
print(taken, len(out))
