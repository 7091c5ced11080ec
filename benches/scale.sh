#!/usr/bin/env bash
# The scale benchmark (issue 36.5): sql/pipeline.sql on a generated corpus of N documents
# (benches/scale_data.py: real paragraphs of the shared corpus, 30% edited copies), each COPY
# step in its own process so that every step gets its own wall time and peak RSS:
#   local: one process on all cores, memory by the default rule (no -m);
#   cluster: a scheduler and 2 executors of 1 vcore each on this machine, the steps sent with
#            --remote; the client's peak RSS from /usr/bin/time, each executor's from its
#            VmHWM (reset before every step).
# Each step is the CREATE EXTERNAL TABLE statements before it plus its COPY, so the steps run
# exactly as in `samplemix -f sql/pipeline.sql`.
# Usage: bash benches/scale.sh DOCS [local|cluster|both]   (e.g. 1000000 both)
# Output: one JSON line per step on stdout, logs under $BENCH_DIR/scale/.
set -euo pipefail
cd "$(dirname "$0")/.."
docs="${1:?usage: bash benches/scale.sh DOCS [local|cluster|both]}"
modes="${2:-both}"
root="${BENCH_DIR:-/tmp/samplemix-bench}/scale"
data="$root/data-$docs"
mkdir -p "$root"
echo "CPU: $(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2), $(nproc) cores, $(grep -q avx512_fp16 /proc/cpuinfo && echo AVX-512 FP16 || (grep -q avx512f /proc/cpuinfo && echo AVX-512 || echo AVX2)), $(free -g | awk '/Mem:/ {print $2}') GiB" >&2
cargo build --release --features ballista --bins >&2
bin="${CARGO_TARGET_DIR:-target}/release"
sm="$bin/samplemix"
[ -d "$data" ] || python3 benches/scale_data.py --docs "$docs" --out "$data" >&2
# The budget: about half the corpus' tokens (documents of ~1.4 KB, ~330 tokens).
budget=$((docs * 160))

# Split the pipeline into steps: step_N.sql holds every CREATE before the N-th COPY and the COPY.
steps="$root/steps"
rm -rf "$steps" && mkdir -p "$steps"
python3 - "$steps" <<'EOF'
import re, sys
sql = open("sql/pipeline.sql").read()
stmts = [s.strip() for s in re.split(r";\s*\n", sql) if s.strip()]
stmts = ["\n".join(l for l in s.splitlines() if not l.lstrip().startswith("--")).strip() for s in stmts]
creates, n = [], 0
for s in stmts:
    if s.upper().startswith("CREATE"):
        creates.append(s)
    elif s.upper().startswith("COPY"):
        n += 1
        m = re.search(r"TO '\$\{work\}([^']*)'", s)
        name = m.group(1).strip("/").replace(".parquet", "") if m else f"step{n}"
        open(f"{sys.argv[1]}/{n:02d}_{name}.sql", "w").write(";\n".join(creates + [s]) + ";\n")
EOF

json_line() {  # json_line MODE STEP TIMEFILE [EXTRA]
  python3 - "$@" <<'EOF'
import json, sys
mode, step, tf = sys.argv[1:4]
extra = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
t = open(tf).read().split()
out = {"bench": "scale", "mode": mode, "step": step, "wall_s": float(t[-2]), "client_rss_mb": round(int(t[-1]) / 1024)}
out.update(extra)
print(json.dumps(out))
EOF
}

run_steps() {  # run_steps MODE WORK [samplemix args...]
  local mode="$1" work="$2"; shift 2
  rm -rf "$work" && mkdir -p "$work"
  for f in "$steps"/*.sql; do
    local step; step=$(basename "$f" .sql)
    [ -n "${pids_exec:-}" ] && for p in $pids_exec; do echo 5 > "/proc/$p/clear_refs"; done
    if ! /usr/bin/time -f "%e %M" -o "$root/time.txt" "$sm" -q "$@" --var input="$data/" --var work="$work/" \
        --var budget="$budget" -f "$f" > "$root/$mode-$step.log" 2>&1; then
      echo "step $step failed:" >&2; tail -5 "$root/$mode-$step.log" >&2; return 1
    fi
    local extra="{}"
    if [ -n "${pids_exec:-}" ]; then
      extra=$(for p in $pids_exec; do awk '/VmHWM/ {print $2}' "/proc/$p/status"; done |
        python3 -c "import json,sys; print(json.dumps({'executor_rss_mb': [round(int(x)/1024) for x in sys.stdin.read().split()]}))")
    fi
    json_line "$mode" "$step" "$root/time.txt" "$extra"
  done
  "$sm" -q --format csv -c "SELECT count(*) AS docs, sum(CASE WHEN keep THEN 0 ELSE 1 END) AS removed FROM '$work/dedup/'" | tail -1 |
    awk -F, -v m="$mode" '{print "{\"bench\":\"scale\",\"mode\":\"" m "\",\"docs\":" $1 ",\"removed\":" $2 "}"}'
  "$sm" -q --format csv -c "SELECT count(*), sum(count), sum(expected_count) FROM '$work/weights/'" | tail -1 |
    awk -F, -v m="$mode" '{print "{\"bench\":\"scale\",\"mode\":\"" m "\",\"weighted\":" $1 ",\"sum_count\":" $2 ",\"sum_expected\":" $3 "}"}'
}

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; pids=(); }
trap cleanup EXIT

if [ "$modes" = local ] || [ "$modes" = both ]; then
  run_steps local "$root/work-local-$docs"
fi
if [ "$modes" = cluster ] || [ "$modes" = both ]; then
  port=50400
  "$bin/samplemix-scheduler" --bind-host 127.0.0.1 --external-host 127.0.0.1 --bind-port $port > "$root/scheduler.log" 2>&1 &
  pids+=($!)
  sleep 1
  pids_exec=""
  for i in 0 1; do
    rm -rf "$root/executor-$i"
    b=$((port + 10 + 3 * i))
    "$bin/samplemix-executor" --scheduler-host 127.0.0.1 --scheduler-port $port --bind-host 127.0.0.1 \
      --external-host 127.0.0.1 --bind-port $b --bind-grpc-port $((b + 1)) --bind-health-port $((b + 2)) \
      --vcores 1 --work-dir "$root/executor-$i" > "$root/executor-$i.log" 2>&1 &
    pids+=($!)
    pids_exec="$pids_exec $!"
  done
  sleep 3
  DATAFUSION_EXECUTION_TARGET_PARTITIONS=8 run_steps cluster "$root/work-cluster-$docs" --remote "df://127.0.0.1:$port"
  pids_exec=""
  cleanup
fi
if [ "$modes" = both ]; then
  # Ballista must give the local run's result, bit for bit.
  "$sm" -q --format csv -c "SELECT count(*) AS rows, sum(CASE WHEN (l.count IS DISTINCT FROM c.count) OR (l.expected_count IS DISTINCT FROM c.expected_count) THEN 1 ELSE 0 END) AS differ FROM '$root/work-local-$docs/weights/' l FULL JOIN '$root/work-cluster-$docs/weights/' c ON l.id = c.id" | tail -1 |
    awk -F, '{print "{\"bench\":\"scale\",\"mode\":\"local_vs_cluster\",\"weights_rows\":" $1 ",\"differ\":" $2 "}"}'
fi
