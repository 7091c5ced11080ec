"""Embeddings on the shared corpus: cluster quality and speed of hashed, static and transformer.

  python3 benches/embed_models.py --bin target/release/samplemix --minilm DIR [--corpus PATH]
      [--speed-docs N] [--speed-only] [--st-python PYTHON]

1. Distils all-MiniLM-L6-v2 (--minilm: a sentence-transformers directory, e.g. the one
   scripts/test.sh unpacks) with `samplemix distill --dim 256`, then embeds every document of
   the corpus three ways (hashed `embed(text)`, the static model, MiniLM at 256 tokens) with the
   samplemix shell, all cores; wall time of each.
2. Cluster quality: `kmeans_fit` (k = 16 and 32, seeds 0, 1, 2) + `diversity_cluster` on each
   embedding, NMI (arithmetic normalisation, sklearn's default) of clusters vs domain.
3. 1-nearest-neighbour domain agreement (cosine, the document itself excluded) per embedding.
4. Speed per core (target_partitions = 1): static `embed` MB/s beside the `model2vec` package
   (`StaticModel.encode`, RAYON_NUM_THREADS=1 so its Rust tokenizer uses one core) on the same
   model; MiniLM docs/s at windows of 128 and 256 tokens on 600 documents beside the numpy
   reference of tests/embed_golden.py (float64) on 20 documents and, with --st-python (an
   interpreter that has sentence-transformers and torch, e.g. a venv made for this bench only),
   sentence-transformers' `encode` on the same documents with the same window on the same
   cores, plus the cosine between its vectors and samplemix's; what 10^8 documents would cost.
   --speed-only skips steps 1-3 (no corpus pass, no clustering) but still distils the model.
Times are best of 3 where stated, the query's wall time minus that of the same scan without
the embedding. Prints JSON lines; BENCHMARKS.md "Semantic embeddings" has the table.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import pyarrow.parquet as pq

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.abspath(os.path.join(here, ".."))
ap = argparse.ArgumentParser()
ap.add_argument("--bin", default=os.path.join(root, "target/debug/samplemix"))
ap.add_argument("--minilm", required=True)
ap.add_argument("--corpus", default=os.path.join(root, "../shared/data/corpus.parquet"))
ap.add_argument("--speed-docs", type=int, default=600)
ap.add_argument("--speed-only", action="store_true")
ap.add_argument("--st-python", help="a python with sentence-transformers, for the side-by-side")
args = ap.parse_args()
work = tempfile.mkdtemp(prefix="samplemix-embed-bench-")
corpus = os.path.abspath(args.corpus)


def shell(sql, partitions=None):
    cmd = [args.bin, "-q", "--format", "csv"]
    if partitions:
        cmd += ["-c", f"SET datafusion.execution.target_partitions = {partitions}"]
    cmd += ["-c", sql]
    t = time.perf_counter()
    out = subprocess.run(cmd, check=True, cwd=root, capture_output=True, text=True).stdout
    return out, time.perf_counter() - t


def emit(**kv):
    print(json.dumps(kv), flush=True)


cpu = open("/proc/cpuinfo").read()
emit(cpu=cpu.split("model name")[1].split(":")[1].splitlines()[0].strip(), cores=os.cpu_count(),
     avx512=" avx512f" in cpu)

static_dir = os.path.join(work, "minilm-static")
t = time.perf_counter()
out = subprocess.run([args.bin, "distill", args.minilm, static_dir, "--dim", "256"], check=True,
                     capture_output=True, text=True).stdout.strip()
emit(step="distill", secs=round(time.perf_counter() - t, 1), summary=out)

size = sum(len(t.encode()) for t in pq.read_table(corpus, columns=["text"]).column("text").to_pylist())
kinds = {"hashed": "embed(text)", "static": f"embed(text, '{static_dir}')",
         "minilm": f"embed(text, '{os.path.abspath(args.minilm)}')"}
for kind, expr in ({} if args.speed_only else kinds).items():
    _, secs = shell(f"COPY (SELECT id, domain, {expr} AS emb FROM '{corpus}') TO '{work}/{kind}.parquet' STORED AS PARQUET")
    emit(step="embed corpus", kind=kind, cores=os.cpu_count(), secs=round(secs, 2),
         docs_per_s=round(12036 / secs, 1), mb_per_s=round(size / 1e6 / secs, 2))


def nmi(a, b):
    a, b = np.unique(a, return_inverse=True)[1], np.unique(b, return_inverse=True)[1]
    n = len(a)
    joint = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(joint, (a, b), 1)
    p = joint / n
    pa, pb = p.sum(1), p.sum(0)
    nz = p > 0
    mi = (p[nz] * np.log(p[nz] / np.outer(pa, pb)[nz])).sum()
    h = lambda q: -(q[q > 0] * np.log(q[q > 0])).sum()
    return mi / ((h(pa) + h(pb)) / 2)


for kind in ([] if args.speed_only else kinds):
    emb = f"{work}/{kind}.parquet"
    for k in (16, 32):
        scores = []
        for seed in (0, 1, 2):
            cen = f"{work}/{kind}-{k}-{seed}-centroids.parquet"
            shell(f"COPY (SELECT * FROM kmeans_fit('{emb}', 'emb', {k}, 100000, {seed})) TO '{cen}' STORED AS PARQUET")
            out, _ = shell(f"SELECT domain, diversity_cluster(emb, '{cen}')['cluster'] AS c FROM '{emb}' ORDER BY id")
            rows = [line.split(",") for line in out.strip().splitlines()[1:]]
            scores.append(nmi([r[0] for r in rows], [int(r[1]) for r in rows]))
        emit(step="nmi", kind=kind, k=k, seeds=[0, 1, 2], nmi=[round(s, 3) for s in scores],
             mean=round(float(np.mean(scores)), 3))
    table = pq.read_table(emb)
    x = np.array(table.column("emb").to_pylist(), dtype=np.float32)
    dom = np.array(table.column("domain").to_pylist())
    hits = 0
    for s in range(0, len(x), 1000):
        sim = x[s:s + 1000] @ x.T
        sim[np.arange(sim.shape[0]), np.arange(s, s + sim.shape[0])] = -np.inf
        hits += int((dom[sim.argmax(1)] == dom[s:s + 1000]).sum())
    emit(step="1nn domain agreement", kind=kind, agreement=round(hits / len(x), 4))

# Speed per core.
texts = pq.read_table(corpus, columns=["text"]).column("text").to_pylist()
# The same scan without the embedding, subtracted: the shell's start and the Parquet decoding
# are not the embedding's (they matter in a debug build).
base = min(shell(f"SELECT sum(length(text)) FROM '{corpus}'", partitions=1)[1] for _ in range(3))
for expr, label in ((f"embed(text, '{static_dir}')", "samplemix embed, static (1 partition)"),
                    ("embed(text)", "samplemix embed, hashed (1 partition)")):
    secs = min(shell(f"SELECT count({expr}) FROM '{corpus}'", partitions=1)[1] for _ in range(3)) - base
    emit(step="static speed", impl=label, mb_per_s_per_core=round(size / 1e6 / secs, 2), secs=round(secs, 2),
         scan_secs_subtracted=round(base, 2))
code = ("import sys, time, pyarrow.parquet as pq\nfrom model2vec import StaticModel\n"
        f"m = StaticModel.from_pretrained({static_dir!r})\n"
        f"t = pq.read_table({corpus!r}, columns=['text']).column('text').to_pylist()\n"
        "s = time.perf_counter(); m.encode(t, use_multiprocessing=False); print(time.perf_counter() - s)")
env = dict(os.environ, RAYON_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
secs = float(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env).stdout)
emit(step="static speed", impl="model2vec 0.10 StaticModel.encode (1 thread, encode only)",
     mb_per_s_per_core=round(size / 1e6 / secs, 2), secs=round(secs, 2))

sample = f"{work}/speed.parquet"
shell(f"COPY (SELECT id, text FROM '{corpus}' WHERE length(text) > 3000 ORDER BY id LIMIT {args.speed_docs}) TO '{sample}' STORED AS PARQUET")
base_sample = min(shell(f"SELECT sum(length(text)) FROM '{sample}'")[1] for _ in range(3))
for window in (128, 256):
    model = os.path.join(work, f"minilm-{window}")
    shutil.copytree(args.minilm, model)
    json.dump({"max_seq_length": window, "do_lower_case": False}, open(os.path.join(model, "sentence_bert_config.json"), "w"))
    for partitions in (1, os.cpu_count()):
        _, secs = shell(f"SELECT count(embed(text, '{model}')) FROM '{sample}'", partitions=partitions)
        secs -= base_sample
        emit(step="transformer speed", impl="samplemix embed MiniLM-L6 (candle, CPU)", window=window,
             partitions=partitions, docs=args.speed_docs, docs_per_s=round(args.speed_docs / secs, 1),
             docs_1e8_core_hours=round(1e8 / (args.speed_docs / secs) * os.cpu_count() / 3600))
    ref = ("import json, sys, time\nsys.path.insert(0, 'tests')\nimport embed_golden, pyarrow.parquet as pq\n"
           f"t = pq.read_table({sample!r}).column('text').to_pylist()[:20]\n"
           f"s = time.perf_counter(); embed_golden.bert({model!r}, t); print(time.perf_counter() - s)")
    secs = float(subprocess.run([sys.executable, "-c", ref], check=True, capture_output=True, text=True,
                                cwd=root, env=dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")).stdout)
    emit(step="transformer speed", impl="numpy float64 reference (tests/embed_golden.py, 1 thread)", window=window,
         docs=20, docs_per_s=round(20 / secs, 2))
    if args.st_python:
        ours = f"{work}/ours-{window}.parquet"
        shell(f"COPY (SELECT id, embed(text, '{model}') AS emb FROM '{sample}' ORDER BY id) TO '{ours}' STORED AS PARQUET")
        theirs = f"{work}/st-{window}.npy"
        st = ("import sys, time, torch, numpy as np, pyarrow.parquet as pq, sentence_transformers as stm\n"
              f"torch.set_num_threads({os.cpu_count()})\n"
              f"m = stm.SentenceTransformer({model!r}, device='cpu'); m.max_seq_length = {window}\n"
              f"r = pq.read_table({sample!r}).to_pydict(); t = [x for _, x in sorted(zip(r['id'], r['text']))]\n"
              "m.encode(t[:8])\n"
              "s = time.perf_counter(); e = m.encode(t, batch_size=32, normalize_embeddings=True); d = time.perf_counter() - s\n"
              f"np.save({theirs!r}, e); print(d, stm.__version__, torch.__version__)")
        out = subprocess.run([args.st_python, "-c", st], check=True, capture_output=True, text=True).stdout.split()
        r = pq.read_table(ours).to_pydict()
        a = np.array([e for _, e in sorted(zip(r["id"], r["emb"]))], dtype=np.float64)
        b = np.load(theirs).astype(np.float64)
        cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
        emit(step="transformer speed", impl=f"sentence-transformers {out[1]} (torch {out[2]}, CPU, "
             f"{os.cpu_count()} threads, batch 32, encode only)", window=window, docs=args.speed_docs,
             docs_per_s=round(args.speed_docs / float(out[0]), 1),
             cosine_to_samplemix_min=round(float(cos.min()), 6), cosine_mean=round(float(cos.mean()), 6))
shutil.rmtree(work)
