"""The learned quality model on real human-labelled sets, beside fastText and scikit-learn.

Three public sets, each with its own held-out split, none of them shipped with the repo (their
licences: ELLIPSE / Feedback Prize ELL is Kaggle competition data, CommonLit excerpts carry a
per-row licence, CoLA is free for research); the script downloads them from the GitHub
snapshots where they are kept:
- ELLIPSE (Feedback Prize - English Language Learning, 3,911 essays, six 1-5 criteria): the
  mean of the six rounded to 0.5 -> 9 levels 0..8;
  github.com/wf1497c/kaggle-competition, feedback-prize-english-language-learning.zip;
- CommonLit Readability (2,834 excerpts, a continuous ease score): 5 levels, the train split's
  quintiles; github.com/ana-borges/CommonLit-Readability, data/train.csv;
- CoLA (10,657 sentences, acceptable or not): 2 levels; train = in_domain_train, test =
  in_domain_dev + out_of_domain_dev (the public test labels are not released);
  github.com/nyu-mll/CoLA-baselines, acceptability_corpus/cola_public/raw/*.tsv.
ELLIPSE and CommonLit: test = the 20% of rows whose md5(id) is smallest mod 5 == 0.

Methods, same splits, one run:
- samplemix: quality_model_fit on the train split, quality_predict on the test split (the
  expected level; the predicted level is it rounded);
- fastText supervised (fasttext-numpy2-wheel), one label per level: level = the most
  probable, score = the expected level under its probabilities;
- scikit-learn LogisticRegression on tf-idf word 1-2-grams (sublinear tf), likewise.
Settings are chosen on a validation split of ELLIPSE's train part only (--tune prints the grid);
the reported numbers are on the three test splits.

Metrics (SampleMix's Table 2 and two rank measures): ACC (level exact), MAE, MSE (in levels),
CACC (within one level), Spearman rho of the score with the label, QWK (quadratic weighted
kappa of the levels).

Usage: python3 benches/quality_learned.py [--data DIR] [--bin PATH] [--tune]
Needs: pip install pyarrow scipy scikit-learn fasttext-numpy2-wheel; cargo build --release.
"""
import argparse
import csv
import hashlib
import io
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from scipy.stats import spearmanr

here = os.path.dirname(os.path.abspath(__file__))
ap = argparse.ArgumentParser()
ap.add_argument("--data", default=os.path.join(here, "data/labelled"))
ap.add_argument("--bin", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(here, "../target")), "release/samplemix"))
ap.add_argument("--tune", action="store_true", help="print the validation grid on ELLIPSE train")
ap.add_argument("--options", action="append", help="quality_model_fit options for the report (repeatable; default: '' and 'signals=true')")
args = ap.parse_args()
args.options = args.options or ["", "signals=true"]

SOURCES = {
    "feedback-prize-english-language-learning.zip":
        "https://github.com/wf1497c/kaggle-competition/raw/HEAD/feedback-prize-english-language-learning.zip",
    "commonlit_train.csv":
        "https://raw.githubusercontent.com/ana-borges/CommonLit-Readability/HEAD/data/train.csv",
    **{f"cola_{s}.tsv": f"https://raw.githubusercontent.com/nyu-mll/CoLA-baselines/HEAD/acceptability_corpus/cola_public/raw/{s}.tsv"
       for s in ["in_domain_train", "in_domain_dev", "out_of_domain_dev"]},
}


def fetch():
    os.makedirs(args.data, exist_ok=True)
    for name, url in SOURCES.items():
        path = os.path.join(args.data, name)
        if not os.path.exists(path):
            print(f"downloading {url}", file=sys.stderr)
            urllib.request.urlretrieve(url, path)


def held_out(key):
    return int(hashlib.md5(key.encode()).hexdigest(), 16) % 5 == 0


def ellipse():
    with zipfile.ZipFile(os.path.join(args.data, "feedback-prize-english-language-learning.zip")) as z:
        rows = list(csv.DictReader(io.TextIOWrapper(z.open("train.csv"), encoding="utf-8")))
    crit = ["cohesion", "syntax", "vocabulary", "phraseology", "grammar", "conventions"]
    data = [(r["text_id"], r["full_text"], int(round((sum(float(r[c]) for c in crit) / 6 - 1) * 2)))
            for r in rows]
    return split(data)


def commonlit():
    with open(os.path.join(args.data, "commonlit_train.csv"), encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    train = [r for r in rows if not held_out(r["id"])]
    cuts = np.quantile([float(r["target"]) for r in train], [0.2, 0.4, 0.6, 0.8])
    data = [(r["id"], r["excerpt"], int(np.searchsorted(cuts, float(r["target"])))) for r in rows]
    return split(data)


def cola():
    def read(name):
        with open(os.path.join(args.data, f"cola_{name}.tsv"), encoding="utf-8") as f:
            return [(f"{name}:{i}", r[3], int(r[1])) for i, r in enumerate(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))]
    return read("in_domain_train"), read("in_domain_dev") + read("out_of_domain_dev")


def split(data):
    return [d for d in data if not held_out(d[0])], [d for d in data if held_out(d[0])]


def metrics(y, level, score):
    y, level, score = np.asarray(y), np.asarray(level), np.asarray(score)
    k = int(max(y.max(), level.max())) + 1
    o = np.zeros((k, k))
    for a, b in zip(y, level):
        o[a, b] += 1
    w = np.array([[(i - j) ** 2 for j in range(k)] for i in range(k)]) / max((k - 1) ** 2, 1)
    e = np.outer(o.sum(1), o.sum(0)) / o.sum()
    return dict(ACC=np.mean(level == y) * 100, MAE=np.mean(np.abs(level - y)), MSE=np.mean((level - y) ** 2),
                CACC=np.mean(np.abs(level - y) <= 1) * 100, rho=spearmanr(score, y)[0],
                QWK=1 - (w * o).sum() / (w * e).sum())


def write_parquet(path, rows, labels=True):
    cols = {"id": [r[0] for r in rows], "text": [r[1] for r in rows]}
    if labels:
        cols["label"] = [r[2] for r in rows]
    pq.write_table(pa.table(cols), path)


def ours(train, test, levels, options):
    with tempfile.TemporaryDirectory() as d:
        write_parquet(f"{d}/train.parquet", train)
        write_parquet(f"{d}/test.parquet", test, labels=False)
        sql = (f"CREATE TABLE m AS SELECT * FROM quality_model_fit('{d}/train.parquet', 'text', 'label', '{options}');"
               f"COPY (SELECT id, quality_predict(text, 'm') AS score FROM '{d}/test.parquet') TO '{d}/pred.parquet'")
        t = time.time()
        subprocess.run([args.bin, "-q", "-c", sql], check=True, capture_output=True)
        seconds = time.time() - t
        pred = dict(zip(*pq.read_table(f"{d}/pred.parquet").to_pydict().values()))
    score = np.array([pred[r[0]] for r in test])
    return np.clip(np.rint(score), 0, levels - 1).astype(int), score, seconds


def expected_and_argmax(probs):
    probs = np.asarray(probs)
    return probs.argmax(1), probs @ np.arange(probs.shape[1])


def fasttext_sup(train, test, levels, epoch=25, lr=0.3, ngrams=2):
    import fasttext
    with tempfile.TemporaryDirectory() as d:
        with open(f"{d}/train.txt", "w", encoding="utf-8") as f:
            for _, text, y in train:
                f.write(f"__label__{y} " + " ".join(text.split()) + "\n")
        t = time.time()
        m = fasttext.train_supervised(f"{d}/train.txt", epoch=epoch, lr=lr, wordNgrams=ngrams, dim=100,
                                      thread=2, seed=0, verbose=0, minCount=1)
        probs = []
        for _, text, _ in test:
            labels, p = m.predict(" ".join(text.split()), k=-1, threshold=-1.0)
            row = np.zeros(levels)
            for l, v in zip(labels, p):
                row[int(l[len("__label__"):])] = v
            probs.append(row / row.sum())
        seconds = time.time() - t
    level, score = expected_and_argmax(probs)
    return level, score, seconds


def sklearn_lr(train, test, levels, C=4.0):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    t = time.time()
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
    x = vec.fit_transform([r[1] for r in train])
    clf = LogisticRegression(C=C, max_iter=2000).fit(x, [r[2] for r in train])
    p = clf.predict_proba(vec.transform([r[1] for r in test]))
    probs = np.zeros((len(test), levels))
    probs[:, clf.classes_] = p
    seconds = time.time() - t
    level, score = expected_and_argmax(probs)
    return level, score, seconds


def show(name, rows):
    print(f"\n{name}")
    print(f"| method | ACC | MAE | MSE | CACC | Spearman | QWK | fit+predict s |")
    print(f"|---|---|---|---|---|---|---|---|")
    for method, m, s in rows:
        print(f"| {method} | {m['ACC']:.1f} | {m['MAE']:.3f} | {m['MSE']:.3f} | {m['CACC']:.1f} | "
              f"{m['rho']:.3f} | {m['QWK']:.3f} | {s:.1f} |")


fetch()
sets = {"ELLIPSE (9 levels)": (ellipse(), 9), "CommonLit (5 levels)": (commonlit(), 5), "CoLA (2 levels)": (cola(), 2)}
if args.tune:
    (train, _), levels = sets["ELLIPSE (9 levels)"]
    fit, val = split([(r[0] + "v", r[1], r[2]) for r in train])
    y = [r[2] for r in val]
    grid = []
    for opts in ["", "epochs=10", "lr=0.1", "lr=0.5", "epochs=10, lr=0.1", "l2=1e-5", "signals=true",
                 "epochs=10, signals=true", "epochs=20, lr=0.05"]:
        lv, sc, _ = ours(fit, val, levels, opts)
        grid.append((f"samplemix '{opts}'", metrics(y, lv, sc), 0))
    for e, lr in [(5, 0.1), (25, 0.3), (50, 0.5), (25, 0.1)]:
        lv, sc, _ = fasttext_sup(fit, val, levels, e, lr)
        grid.append((f"fastText epoch={e} lr={lr}", metrics(y, lv, sc), 0))
    for C in [1.0, 4.0, 16.0]:
        lv, sc, _ = sklearn_lr(fit, val, levels, C)
        grid.append((f"sklearn C={C}", metrics(y, lv, sc), 0))
    show("Validation (ELLIPSE train, 20% held out by md5(id + 'v'))", grid)
    sys.exit(0)

for name, ((train, test), levels) in sets.items():
    y = [r[2] for r in test]
    rows = []
    runs = [(f"samplemix quality_model_fit '{o}'", lambda o=o: ours(train, test, levels, o)) for o in args.options]
    for method, run in runs + [("fastText supervised (epoch 25, lr 0.3, wordNgrams 2)", lambda: fasttext_sup(train, test, levels)),
                        ("scikit-learn LR tf-idf 1-2 (C 4)", lambda: sklearn_lr(train, test, levels))]:
        lv, sc, s = run()
        rows.append((method, metrics(y, lv, sc), s))
    show(f"{name}: train {len(train)}, test {len(test)}", rows)
