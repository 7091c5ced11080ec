"""Speed of the learned quality functions, beside the fastText wheel, in one run (release build).

- quality_predict, MB/s per core: `SELECT sum(quality_predict(text, 'm.parquet'))` over the
  shared corpus on one partition (DATAFUSION_EXECUTION_TARGET_PARTITIONS=1; shell start and
  Parquet read included), with the model fitted on the corpus first; a plain scan
  (`sum(length(text))`) is timed alongside, the part that is not prediction.
- fasttext_predict, MB/s per core, beside the fastText wheel's own `predict` on a list of the
  same texts (one thread; line breaks replaced by spaces as the wheel requires; the Python list
  is built before the clock starts) for the same model: a supervised model trained by the
  wheel on the corpus' domains (dim 100, wordNgrams 2, DCLM's quality classifier's shape but
  smaller), saved as .bin.
- quality_model_fit on 100,000 documents (benches/scale_data.py, real text), default options,
  on 2 partitions: wall time of the whole statement (read, sample, features, 5 epochs).

Usage: python3 benches/quality_learned_speed.py [--bin PATH] [--corpus PATH] [--reps 5]
Needs: pip install pyarrow fasttext-numpy2-wheel; cargo build --release.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import pyarrow.parquet as pq

here = os.path.dirname(os.path.abspath(__file__))
ap = argparse.ArgumentParser()
ap.add_argument("--bin", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(here, "../target")), "release/samplemix"))
ap.add_argument("--corpus", default=os.path.join(here, "../../shared/data/corpus.parquet"))
ap.add_argument("--reps", type=int, default=5)
ap.add_argument("--fit-docs", type=int, default=100_000)
args = ap.parse_args()

corpus = os.path.abspath(args.corpus)
work = tempfile.mkdtemp(prefix="samplemix-learned-")
one = dict(os.environ, DATAFUSION_EXECUTION_TARGET_PARTITIONS="1")
two = dict(os.environ, DATAFUSION_EXECUTION_TARGET_PARTITIONS="2")
labels_sql = ("CASE WHEN domain IN ('Wikipedia', 'Book', 'ArXiv', 'Speeches') THEN 2 "
              "WHEN domain = 'StackExchange' THEN 1 ELSE 0 END")


def shell(sql, env):
    start = time.perf_counter()
    out = subprocess.run([args.bin, "-q", "--format", "csv", "-c", sql], env=env, check=True,
                         capture_output=True, text=True).stdout
    return time.perf_counter() - start, out.strip().splitlines()[-1]


def median_time(sql, env):
    runs = [shell(sql, env) for _ in range(args.reps)]
    return statistics.median(t for t, _ in runs), runs[0][1]


texts = pq.read_table(corpus, columns=["text"]).column("text").to_pylist()
mb = sum(len(t.encode()) for t in texts) / 1e6
print(f"corpus: {len(texts)} documents, {mb:.1f} MB of UTF-8 text; {os.cpu_count()} CPUs")

# Models.
model = f"{work}/m.parquet"
shell(f"CREATE VIEW l AS SELECT text, {labels_sql} AS label FROM '{corpus}'; "
      f"COPY (SELECT * FROM quality_model_fit(l, 'text', 'label')) TO '{model}'", two)
import fasttext  # noqa: E402

domains = pq.read_table(corpus, columns=["domain"]).column("domain").to_pylist()
with open(f"{work}/train.txt", "w", encoding="utf-8") as f:
    for d, t in zip(domains, texts):
        f.write(f"__label__{d} " + " ".join(t.split()) + "\n")
ft = fasttext.train_supervised(f"{work}/train.txt", dim=100, wordNgrams=2, epoch=5, lr=0.1, thread=2, verbose=0)
ft_path = f"{work}/domains.bin"
ft.save_model(ft_path)

scan, _ = median_time(f"SELECT sum(length(text)) FROM '{corpus}'", one)
qp, qsum = median_time(f"SELECT sum(quality_predict(text, '{model}')) FROM '{corpus}'", one)
fp, fsum = median_time(f"SELECT sum(fasttext_predict(text, '{ft_path}', '__label__Wikipedia')) FROM '{corpus}'", one)
# The fixed cost: shell start, and reading the model (dim 100 × 2M buckets: 800 MB).
fload, _ = median_time(f"SELECT sum(fasttext_predict(text, '{ft_path}', '__label__Wikipedia')) FROM (SELECT text FROM '{corpus}' LIMIT 1)", one)
load_times = []
for _ in range(args.reps):
    start = time.perf_counter()
    fasttext.load_model(ft_path)
    load_times.append(time.perf_counter() - start)

lines = [" ".join(t.split()) for t in texts]
py_times = []
for _ in range(args.reps):
    start = time.perf_counter()
    ft.predict(lines, k=1)
    py_times.append(time.perf_counter() - start)
py = statistics.median(py_times)

print("\n| function | time (median of %d) | MB/s per core | peer | peer MB/s | note |" % args.reps)
print("|---|---|---|---|---|---|")
print(f"| plain scan, sum(length(text)) | {scan:.3f} s | {mb / scan:.1f} | | | shell start + Parquet read |")
print(f"| quality_predict | {qp:.3f} s | {mb / qp:.1f} ({mb / (qp - scan):.1f} without the scan) | | | sum {qsum} |")
print(f"| fasttext_predict | {fp:.3f} s | {mb / fp:.1f}; {mb / (fp - fload):.1f} after the model is read | fastText wheel predict, 1 thread, model already loaded | {mb / py:.1f} | sum {fsum}; reading the {os.path.getsize(ft_path) / 1e6:.0f} MB model: ours {fload:.2f} s (with shell start, one document), the wheel's load_model {statistics.median(load_times):.2f} s |")

# Fitting 100k documents.
sys.path.insert(0, here)
data = f"{work}/fit-{args.fit_docs}"
subprocess.run([sys.executable, os.path.join(here, "scale_data.py"), "--docs", str(args.fit_docs), "--out", data,
                "--corpus", corpus, "--copies", "0"], check=True, capture_output=True)
fit_mb = sum(len(t.encode()) for f in os.listdir(data) if f.endswith(".parquet")
             for t in pq.read_table(os.path.join(data, f), columns=["text"]).column("text").to_pylist())
fits = []
for _ in range(3):
    t, rows = shell(f"CREATE VIEW l AS SELECT text, {labels_sql} AS label FROM '{data}/'; "
                    f"SELECT rows, levels FROM quality_model_fit(l, 'text', 'label')", two)
    fits.append(t)
print(f"\nquality_model_fit, {args.fit_docs} documents ({fit_mb / 1e6:.0f} MB), 2 partitions, default options: "
      f"{statistics.median(fits):.2f} s median of 3 ({', '.join(f'{t:.2f}' for t in fits)}); rows, levels = {rows}")
