#!/usr/bin/env bash
# samplemix on Ballista vs local (issue: "Beyond one machine"), release build with the feature.
# quality_score + embed + token_count over the corpus as 8 Parquet shards:
#   local with 1 partition, then clusters of 1 and 2 executors of 1 vcore each on this machine;
# and the pipeline (sql/pipeline.sql) on the sample corpus, local vs --remote (the overhead).
# Usage: bash benches/ballista.sh [CORPUS.parquet]   (default ../shared/data/corpus.parquet)
set -euo pipefail
cd "$(dirname "$0")/.."
corpus="${1:-../shared/data/corpus.parquet}"
dir="${BENCH_DIR:-/tmp/samplemix-bench}/ballista"
rm -rf "$dir" && mkdir -p "$dir"
echo "CPU: $(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2), $(nproc) cores, $(grep -q avx512f /proc/cpuinfo && echo AVX-512 || echo AVX2)"
cargo build --release --features ballista --bins
bin="${CARGO_TARGET_DIR:-target}/release"
sm="$bin/samplemix"

for i in 0 1 2 3 4 5 6 7; do
  "$sm" -q -c "COPY (SELECT * FROM '$corpus' WHERE CAST(floor(samplemix_uniform(id, 7) * 8) AS INT) = $i) TO '$dir/shards/part-$i.parquet' STORED AS PARQUET" >/dev/null
done
q="SELECT count(*) AS docs, sum(token_count(text)) AS tokens, sum(quality_score(text)) AS quality, sum(array_sum(embed(text))) AS emb FROM '$dir/shards/'"

wall() { local s e; s=$(date +%s.%N); "$@" > "$dir/out.txt"; e=$(date +%s.%N); python3 -c "print(round($e - $s, 3))"; }

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; pids=(); }
trap cleanup EXIT

cluster() {  # cluster N_EXECUTORS PORT
  "$bin/samplemix-scheduler" --bind-host 127.0.0.1 --external-host 127.0.0.1 --bind-port "$2" > "$dir/scheduler.log" 2>&1 &
  pids+=($!)
  sleep 1
  for ((i = 0; i < $1; i++)); do
    local b=$(( $2 + 10 + 3 * i ))
    "$bin/samplemix-executor" --scheduler-host 127.0.0.1 --scheduler-port "$2" --bind-host 127.0.0.1 \
      --external-host 127.0.0.1 --bind-port "$b" --bind-grpc-port $((b + 1)) --bind-health-port $((b + 2)) \
      --vcores 1 --work-dir "$dir/work-$i" > "$dir/executor-$i.log" 2>&1 &
    pids+=($!)
  done
  sleep 3
}

echo "== quality_score + embed + token_count over 8 shards"
"$sm" -q --format csv -c "$q" | tail -1
t=$(DATAFUSION_EXECUTION_TARGET_PARTITIONS=1 wall "$sm" -q --format csv -c "$q")
echo "{\"bench\":\"ballista_scan\",\"mode\":\"local_1_partition\",\"wall_s\":$t}"
for n in 1 2; do
  port=$((50100 + 100 * n))
  cluster "$n" "$port"
  # 8 partitions: one task per shard, so that both executors get work.
  DATAFUSION_EXECUTION_TARGET_PARTITIONS=8 "$sm" -q --remote "df://127.0.0.1:$port" --format csv -c "$q" | tail -1   # warm-up, and the same result
  t=$(DATAFUSION_EXECUTION_TARGET_PARTITIONS=8 wall "$sm" -q --remote "df://127.0.0.1:$port" --format csv -c "$q")
  echo "{\"bench\":\"ballista_scan\",\"mode\":\"cluster_${n}x1\",\"wall_s\":$t}"
  if [ "$n" = 2 ]; then
    echo "== pipeline on the sample corpus, local vs --remote (2 executors)"
    args=(-q --var input=data/sample.parquet --var budget=640000 -f sql/pipeline.sql)
    t=$(wall "$sm" "${args[@]}" --var work="$dir/local/")
    echo "{\"bench\":\"ballista_pipeline\",\"mode\":\"local\",\"wall_s\":$t}"
    t=$(wall "$sm" --remote "df://127.0.0.1:$port" "${args[@]}" --var work="$dir/remote/")
    echo "{\"bench\":\"ballista_pipeline\",\"mode\":\"remote_2x1\",\"wall_s\":$t}"
  fi
  cleanup
  sleep 1
done
