"""quality_score on real web pages: does a page's clean article score above the page's raw text?

Input: benches/data/web_pairs.parquet (built by benches/quality_web_data.py from two public sets,
see benches/data/README.md): per page the whole page's visible text (`raw`) and the human-made
clean article (`clean`). For each set, and for samplemix's quality_score next to datatrove 0.10.1's
rule count (how many of Gopher quality, Gopher repetition, C4 and FineWeb reject the text, as a
score: 4 − rejections), it prints:
- pairs: share of pages whose clean text scores strictly above its raw text (ties listed apart);
- AUC: ROC AUC of clean articles (positive) vs raw pages (negative) over the whole set, ties 1/2.

Usage: python3 benches/quality_web.py [--pairs PATH] [--bin PATH] [--no-datatrove] [--worst N]
Needs: pip install pyarrow; for the datatrove column 'datatrove==0.10.1' spacy 'xxhash<4';
       cargo build --release (the samplemix binary).
"""
import argparse
import csv
import io
import os
import subprocess
import sys

import pyarrow.parquet as pq

here = os.path.dirname(os.path.abspath(__file__))
ap = argparse.ArgumentParser()
ap.add_argument("--pairs", default=os.path.join(here, "data/web_pairs.parquet"))
ap.add_argument("--bin", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(here, "../target")), "release/samplemix"))
ap.add_argument("--no-datatrove", action="store_true")
ap.add_argument("--worst", type=int, default=0, help="print the N pairs where raw beats clean by most")
args = ap.parse_args()

rows = pq.read_table(args.pairs).to_pylist()
sql = (f"SELECT set, page, quality_score(clean) AS qc, quality_score(raw) AS qr "
       f"FROM '{args.pairs}' ORDER BY set, page")
out = subprocess.run([args.bin, "-q", "--format", "csv", "--maxrows", "inf", "-c", sql],
                     check=True, capture_output=True, text=True).stdout
ours = {(r["set"], r["page"]): (float(r["qc"]), float(r["qr"])) for r in csv.DictReader(io.StringIO(out))}


def datatrove_scores():
    from datatrove.data import Document
    from datatrove.pipeline.filters import (C4QualityFilter, FineWebQualityFilter,
                                            GopherQualityFilter, GopherRepetitionFilter)
    filters = [GopherQualityFilter(), GopherRepetitionFilter(), C4QualityFilter(), FineWebQualityFilter()]

    def passed(text):
        # C4 rewrites doc.text: a fresh Document per filter.
        return sum(f.filter(Document(text=text, id="x")) is True for f in filters)

    return {(r["set"], r["page"]): (passed(r["clean"]), passed(r["raw"])) for r in rows}


def auc(pos, neg):
    """Mann-Whitney: P(pos > neg) + P(tie) / 2."""
    both = sorted([(v, 1) for v in pos] + [(v, 0) for v in neg])
    rank_sum, i = 0.0, 0
    while i < len(both):
        j = i
        while j < len(both) and both[j][0] == both[i][0]:
            j += 1
        mean_rank = (i + 1 + j) / 2
        rank_sum += mean_rank * sum(1 for k in range(i, j) if both[k][1])
        i = j
    n1, n0 = len(pos), len(neg)
    return (rank_sum - n1 * (n1 + 1) / 2) / (n1 * n0)


scorers = {"samplemix quality_score": ours}
if not args.no_datatrove:
    scorers["datatrove rule count (0-4 passed)"] = datatrove_scores()

sets = sorted({r["set"] for r in rows})
print(f"{'set':<12} {'scorer':<36} {'pairs':>5} {'clean > raw':>12} {'ties':>5} {'AUC':>7}")
for s in sets:
    keys = [(r["set"], r["page"]) for r in rows if r["set"] == s]
    for name, sc in scorers.items():
        wins = sum(sc[k][0] > sc[k][1] for k in keys)
        ties = sum(sc[k][0] == sc[k][1] for k in keys)
        a = auc([sc[k][0] for k in keys], [sc[k][1] for k in keys])
        print(f"{s:<12} {name:<36} {len(keys):>5} {100 * wins / len(keys):>11.1f}% {ties:>5} {a:>7.3f}")
if args.worst:
    worst = sorted(ours.items(), key=lambda kv: kv[1][0] - kv[1][1])[: args.worst]
    for (s, page), (qc, qr) in worst:
        print(f"  {s}/{page}: clean {qc:.3f} raw {qr:.3f}")
