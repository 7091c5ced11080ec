#!/usr/bin/env bash
# Every benchmark figure of BENCHMARKS.md, ours and the peers', in one run (release build).
# Usage: bash benches/run.sh [CORPUS.parquet]   (default ../shared/data/corpus.parquet)
# Needs: pip install tiktoken "datatrove==0.10.1" tokenizers "xxhash<4" spacy faiss-cpu numpy duckdb pyarrow
#        scipy scikit-learn fasttext-numpy2-wheel
set -euo pipefail
cd "$(dirname "$0")/.."
# Absolute: cargo runs a bench from its package directory (udfs/), not from here.
corpus="$(realpath "${1:-../shared/data/corpus.parquet}")"
dir="${BENCH_DIR:-/tmp/samplemix-bench}"
mkdir -p "$dir"
# faiss-cpu's OpenBLAS kernels for this CPU (SkylakeX dies on CPUs without AVX-512).
if grep -q avx512f /proc/cpuinfo; then coretype="${FAISS_CORETYPE:-SkylakeX}"; else coretype="${FAISS_CORETYPE:-Haswell}"; fi
echo "CPU: $(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2), OPENBLAS_CORETYPE=$coretype"
cargo build --release --bin samplemix
cargo bench -p samplemix-udfs --bench kernels --no-run

kernels() { cargo bench -q -p samplemix-udfs --bench kernels -- "$@"; }

echo "== text kernels (1 core) vs tiktoken and datatrove"
kernels text "$corpus"
kernels text "$corpus" 1500
python3 benches/peers.py tiktoken "$corpus"
python3 benches/peers.py datatrove "$corpus" 1500

echo "== assignment 1M x 256 -> 256 vs linfa predict, faiss, sgemm peak"
kernels assign "$dir"
OPENBLAS_CORETYPE="$coretype" FAISS_THREADS=1 python3 benches/peers.py faiss_assign "$dir"
OPENBLAS_CORETYPE="$coretype" FAISS_THREADS=2 python3 benches/peers.py faiss_assign "$dir"

echo "== kmeans fit 200k x 256, k=256, 20 iterations vs faiss.Kmeans and scikit-learn"
kernels kmeans "$dir"
OPENBLAS_CORETYPE="$coretype" FAISS_THREADS=2 python3 benches/peers.py faiss_kmeans "$dir"
python3 benches/peers.py sklearn_kmeans "$dir"

echo "== kmeans fit 1M x 256, k=1024, 20 iterations (ours only: the peers take several minutes)"
/usr/bin/time -f '{"bench":"kmeans_1m_rss","max_rss_mb":%M}' \
  cargo bench -q -p samplemix-udfs --bench kernels -- kmeans "$dir" 1000000 1024 20

echo "== samplemix_weights 10M rows, K=1024 vs DuckDB and one scan"
python3 benches/weights.py --dir "$dir"

echo "== quality_score MB/s per core through SQL (one partition, Parquet read included)"
python3 benches/quality_speed.py --bin "${CARGO_TARGET_DIR:-target}/release/samplemix" --corpus "$corpus"

echo "== quality_signals agreement with datatrove"
python3 benches/quality_agreement.py --docs 2000 --bin "${CARGO_TARGET_DIR:-target}/release/samplemix"

echo "== learned quality on ELLIPSE, CommonLit, CoLA vs fastText and scikit-learn (downloads the sets)"
python3 benches/quality_learned.py --bin "${CARGO_TARGET_DIR:-target}/release/samplemix"

echo "== quality_predict, fasttext_predict MB/s per core vs the fastText wheel; quality_model_fit on 100k documents"
python3 benches/quality_learned_speed.py --bin "${CARGO_TARGET_DIR:-target}/release/samplemix" --corpus "$corpus"

echo "== quality_score on real web pages (raw page vs clean article) vs datatrove's rule count"
python3 benches/quality_web.py --bin "${CARGO_TARGET_DIR:-target}/release/samplemix"

echo "== realised tokens vs budget, seeds 0-9, on the whole corpus ('tokens' mode)"
"${CARGO_TARGET_DIR:-target}/release/samplemix" -q --format csv -f benches/budget.sql \
  --var corpus="$corpus" --var budget=10000000

echo "== near_duplicates vs datatrove MinHash dedup (shared corpus + generated near-duplicates)"
python3 benches/dedup.py --corpus "$corpus" --dir "$dir" --bin "${CARGO_TARGET_DIR:-target}/release/samplemix"

echo "== Ballista: 1 and 2 executors, --remote overhead (builds with --features ballista)"
bash benches/ballista.sh "$corpus"

echo "== the pipeline at 1M documents, local and on 2 Ballista executors (4M: bash benches/scale.sh 4000000 both, ~20 min)"
bash benches/scale.sh 1000000 both
