"""A large corpus made of real text, for the scale benchmark (benches/scale.sh).

Every generated document takes its domain with the shared corpus' domain shares, and its text
is two runs of consecutive lines (about 500 characters each) cut from two real documents of that
domain, so the words, the code, the languages and the boilerplate are real and every document is
new. Then 30% of the documents are edited copies of earlier ones (the edits of
benches/dedup.py: words deleted or swapped, case and spacing changed, a boilerplate line added,
the end cut), for near_duplicates to find. Seeded: the same arguments give the same files.

Output: DIR/shard-NNN.parquet (id, domain, text), 125,000 documents per shard.

Usage: python3 benches/scale_data.py --docs 1000000 --out /tmp/samplemix-bench/scale/1m
       [--corpus ../shared/data/corpus.parquet] [--seed 42]
Needs: pip install pyarrow
"""
import argparse
import json
import os
import random

import pyarrow as pa
import pyarrow.parquet as pq

from textedit import edit

ap = argparse.ArgumentParser()
here = os.path.dirname(os.path.abspath(__file__))
ap.add_argument("--corpus", default=os.path.join(here, "../../shared/data/corpus.parquet"))
ap.add_argument("--docs", type=int, required=True)
ap.add_argument("--out", required=True)
ap.add_argument("--seed", type=int, default=42)
ap.add_argument("--copies", type=float, default=0.3, help="share of documents that are edited copies")
args = ap.parse_args()

SHARD = 125_000
RUN_CHARS = 500

src = pq.read_table(args.corpus, columns=["domain", "text"]).to_pylist()
by_domain = {}
for r in src:
    if r["text"]:
        by_domain.setdefault(r["domain"], []).append(r["text"].split("\n"))
domains = sorted(by_domain)
shares = [len(by_domain[d]) for d in domains]


def run_of_lines(lines, rng):
    """Consecutive lines from a random start, up to about RUN_CHARS characters."""
    start = rng.randrange(len(lines))
    out, size = [], 0
    for line in lines[start:]:
        out.append(line)
        size += len(line) + 1
        if size >= RUN_CHARS:
            break
    return "\n".join(out)


rng = random.Random(args.seed)
os.makedirs(args.out, exist_ok=True)
originals = []  # (domain, text) of the documents so far, for the copies
n_copies = int(args.docs * args.copies)
copy_at = set(rng.sample(range(args.docs // 10, args.docs), n_copies))
total_bytes = 0
for s in range(0, args.docs, SHARD):
    rows = {"id": [], "domain": [], "text": []}
    for i in range(s, min(s + SHARD, args.docs)):
        if i in copy_at:
            j = rng.randrange(len(originals))
            domain, text = originals[j]
            # dedup.py's rule: word edits only on documents of 40 words or more.
            text = edit(text, i % 6 if len(text.split()) >= 40 else 3, rng)
            doc_id = f"s{i:09d}-copy-of-{j:09d}"
        else:
            domain = rng.choices(domains, weights=shares)[0]
            a, b = rng.choice(by_domain[domain]), rng.choice(by_domain[domain])
            text = run_of_lines(a, rng) + "\n\n" + run_of_lines(b, rng)
            originals.append((domain, text))
            doc_id = f"s{i:09d}"
        rows["id"].append(doc_id)
        rows["domain"].append(domain)
        rows["text"].append(text)
        total_bytes += len(text.encode())
    pq.write_table(pa.table(rows), os.path.join(args.out, f"shard-{s // SHARD:03d}.parquet"), row_group_size=25_000)
print(json.dumps({"out": args.out, "docs": args.docs, "copies": n_copies, "text_bytes": total_bytes}))
