"""Peer implementations on the same inputs as benches/kernels.rs (one process per figure).

  python3 benches/peers.py tiktoken CORPUS.parquet      # MB/s per core, encode_ordinary o200k_base
  python3 benches/peers.py datatrove CORPUS.parquet [N] # MB/s per core, the 4 quality filters
  python3 benches/peers.py faiss_assign DIR             # IndexFlatL2.search, 1M x 256 -> k=256
  python3 benches/peers.py faiss_kmeans DIR             # faiss.Kmeans 200k x 256, k=256, 20 iter
  python3 benches/peers.py sklearn_kmeans DIR           # sklearn KMeans(n_init=1), same data

faiss-cpu's bundled OpenBLAS may not recognise the CPU and fall back to slow kernels: set
OPENBLAS_CORETYPE to the CPU's class (benches/run.sh picks SkylakeX on AVX-512 CPUs, else Haswell,
i.e. AVX2; SkylakeX dies with an illegal instruction on a CPU without AVX-512).
Prints one JSON object per line.
"""
import json
import os
import sys
import time

import pyarrow.parquet as pq


def texts(path, limit=None):
    t = pq.read_table(path, columns=["text"]).column("text").to_pylist()
    return t[:limit] if limit else t


what = sys.argv[1]
if what == "tiktoken":
    sys.path.insert(0, os.path.dirname(__file__))
    import tiktoken_ref

    enc = tiktoken_ref.encoding("o200k_base")
    docs = texts(sys.argv[2])
    size = sum(len(d.encode()) for d in docs)
    start = time.perf_counter()
    n = sum(len(enc.encode_ordinary(d)) for d in docs)
    secs = time.perf_counter() - start
    print(json.dumps({"bench": "tiktoken", "docs": len(docs), "bytes": size, "secs": round(secs, 3), "mb_per_s_per_core": round(size / 1e6 / secs, 2), "tokens": n}))
elif what == "datatrove":
    from datatrove.data import Document
    from datatrove.pipeline.filters import C4QualityFilter, FineWebQualityFilter, GopherQualityFilter, GopherRepetitionFilter

    limit = int(sys.argv[3]) if len(sys.argv) > 3 else 1500
    docs = texts(sys.argv[2], limit)
    filters = [GopherQualityFilter(), GopherRepetitionFilter(), C4QualityFilter(), FineWebQualityFilter()]
    size = sum(len(d.encode()) for d in docs)
    filters[0].filter(Document(text="warm up the spaCy tokenizer " * 20, id="w"))
    start = time.perf_counter()
    for i, d in enumerate(docs):
        for f in filters:
            f.filter(Document(text=d, id=str(i)))
    secs = time.perf_counter() - start
    print(json.dumps({"bench": "datatrove_4_filters", "docs": len(docs), "bytes": size, "secs": round(secs, 3), "mb_per_s_per_core": round(size / 1e6 / secs, 3)}))
elif what == "sklearn_kmeans":
    import numpy as np
    from sklearn.cluster import KMeans

    x = np.fromfile(os.path.join(sys.argv[2], "kmeans_x.f32"), dtype="<f4").reshape(-1, 256)
    km = KMeans(n_clusters=256, n_init=1, max_iter=20, tol=0.0, random_state=0, algorithm="lloyd")
    start = time.perf_counter()
    km.fit(x)
    secs = time.perf_counter() - start
    print(json.dumps({"bench": "sklearn_KMeans", "n": len(x), "k": 256, "iterations": int(km.n_iter_), "secs": round(secs, 3), "inertia": round(float(km.inertia_) / len(x), 5)}))
elif what in ("faiss_assign", "faiss_kmeans"):
    import faiss
    import numpy as np

    d_dir = sys.argv[2]
    threads = int(os.environ.get("FAISS_THREADS", "2"))
    faiss.omp_set_num_threads(threads)
    if what == "faiss_assign":
        x = np.fromfile(os.path.join(d_dir, "assign_x.f32"), dtype="<f4").reshape(-1, 256)
        c = np.fromfile(os.path.join(d_dir, "assign_c.f32"), dtype="<f4").reshape(-1, 256)
        index = faiss.IndexFlatL2(256)
        index.add(c)
        start = time.perf_counter()
        _, labels = index.search(x, 1)
        secs = time.perf_counter() - start
        print(json.dumps({"bench": "faiss_IndexFlatL2_search", "threads": threads, "n": len(x), "k": len(c), "secs": round(secs, 4), "checksum": int(labels[:1000].sum())}))
    else:
        x = np.fromfile(os.path.join(d_dir, "kmeans_x.f32"), dtype="<f4").reshape(-1, 256)
        km = faiss.Kmeans(256, 256, niter=20, seed=0, max_points_per_centroid=len(x), verbose=False)
        start = time.perf_counter()
        km.train(x)
        secs = time.perf_counter() - start
        _, labels = km.index.search(x, 1)
        inertia = float(((x - km.centroids[labels[:, 0]]) ** 2).sum(axis=1).mean())
        print(json.dumps({"bench": "faiss_Kmeans", "threads": threads, "n": len(x), "k": 256, "iterations": 20, "secs": round(secs, 3), "inertia": round(inertia, 5)}))
