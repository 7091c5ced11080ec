"""samplemix from datafusion-python 55: the functions, the quickstart, errors, inputs, the GIL, S3.

Run by the README's test command (scripts/test.sh), which builds and installs the package first.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from datafusion import SessionContext

import samplemix

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SAMPLE = os.path.join(ROOT, "data", "sample.parquet")


def shell_binary() -> str:
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    path = os.environ.get("SAMPLEMIX_BIN", os.path.join(target, "debug", "samplemix"))
    assert os.path.exists(path), f"{path}: build the shell first (scripts/test.sh does)"
    return path


@pytest.fixture
def ctx() -> SessionContext:
    c = SessionContext()
    samplemix.register(c)
    c.register_parquet("corpus", SAMPLE)
    return c


def quickstart_sql(centroids: str) -> list[str]:
    """sql/quickstart.sql's steps 0-3, with the centroids as a Parquet file (a function that
    reads files takes a path in Python: the foreign session has no tables for it)."""
    return [
        "CREATE TABLE dedup AS SELECT * FROM near_duplicates(corpus, 'id', 'text')",
        "CREATE TABLE docs AS SELECT id, domain, text, token_count(text) AS tokens, "
        "quality_score(text) AS quality, embed(text) AS emb FROM corpus WHERE id IN (SELECT id FROM dedup WHERE keep)",
        "CREATE TABLE centroids AS SELECT * FROM kmeans_fit(docs, 'emb', 16, 100000, 0)",
        f"COPY centroids TO '{centroids}' STORED AS PARQUET",
        "CREATE TABLE scored AS SELECT id, quality, dc['cluster'] AS cluster, dc['distance'] AS distance, tokens "
        f"FROM (SELECT id, quality, tokens, diversity_cluster(emb, '{centroids}') AS dc FROM docs)",
        "CREATE TABLE weights AS SELECT * FROM samplemix_weights(scored, centroids, 0.8, 0.2, 640000, 0, 'tokens', 'mean', "
        "'rounding=systematic, max_copies=4, min_cluster_size=5')",
    ]


def test_quickstart_counts_equal_the_shell(ctx, tmp_path):
    for statement in quickstart_sql(str(tmp_path / "centroids.parquet")):
        ctx.sql(statement).collect()
    ours = {r["id"]: r["count"] for r in ctx.sql("SELECT id, count FROM weights").to_arrow_table().to_pylist()}
    out = tmp_path / "shell.csv"
    subprocess.run(
        [shell_binary(), "-q", "-f", "sql/quickstart.sql", "-c", f"COPY (SELECT id, count FROM weights) TO '{out}' STORED AS CSV"],
        cwd=ROOT, check=True, capture_output=True,
    )
    table = pcsv.read_csv(out, convert_options=pcsv.ConvertOptions(column_types={"id": pa.string()}))
    shell = {r["id"]: r["count"] for r in table.to_pylist()}
    assert len(ours) > 800
    assert ours == shell


def test_every_function_is_callable(ctx, tmp_path):
    names = {r["name"] for r in ctx.sql("SELECT name FROM samplemix_help()").to_arrow_table().to_pylist()}
    assert {"kmeans_fit", "samplemix_weights", "near_duplicates", "quality_model_fit", "token_count"} <= names
    row = ctx.sql(
        "SELECT token_count('hello world') AS t, quality_score('Hello world. This is fine.') AS q, "
        "cardinality(embed('a b', 8)) AS e, cardinality(minhash('a b c d e f')) AS m, "
        "minhash_similarity(minhash('a b c d e f'), minhash('a b c d e f')) AS s, "
        "cardinality(minhash_bands(minhash('a b c d e f'), 14)) AS b, "
        "samplemix_uniform('x', 0) < 1 AS u, samplemix_round(0.0, 'x', 0) AS r, samplemix_exp(0.0) AS x, "
        "samplemix_lookup(2, [1, 2], [10.0, 20.0]) AS l, samplemix_distance([1.0, 0.0], [0.0, 1.0], 'l2') > 1 AS d, "
        "samplemix_assert(1, true, 'm', 'd') AS a, quality_signals('Hello world.')['words'] AS w"
    ).to_arrow_table().to_pylist()[0]
    assert row == {"t": 2, "q": row["q"], "e": 8, "m": 112, "s": 1.0, "b": 14, "u": True, "r": 0, "x": 1.0,
                   "l": 20.0, "d": True, "a": 1, "w": 2}
    assert 0 <= row["q"] <= 10
    agg = ctx.sql("SELECT samplemix_exact_sum(x) AS s FROM (VALUES (0.1), (0.2), (0.3)) t(x)").to_arrow_table()
    assert agg.column("s").to_pylist() == [0.6000000000000001] or abs(agg.column("s")[0].as_py() - 0.6) < 1e-15
    win = ctx.sql(
        "SELECT sum(c) AS n FROM (SELECT samplemix_systematic_round(e, 1, id, 0, 'documents') OVER () AS c "
        "FROM (VALUES ('a', 0.5), ('b', 0.5), ('c', 1.0)) t(id, e))"
    ).to_arrow_table()
    assert win.column("n").to_pylist() == [2]
    # The learned-quality functions, models by path.
    ctx.sql("CREATE VIEW l AS SELECT text, CASE WHEN domain = 'ArXiv' THEN 1 ELSE 0 END AS label FROM corpus").collect()
    model = str(tmp_path / "q.parquet")
    ctx.sql(f"COPY (SELECT * FROM quality_model_fit(l, 'text', 'label', 'buckets=4096')) TO '{model}'").collect()
    q = ctx.sql(f"SELECT avg(quality_predict(text, '{model}')) AS q FROM corpus").to_arrow_table().column("q")[0].as_py()
    assert 0 < q < 1
    with pytest.raises(Exception, match="fasttext_predict: argument 'model_path'"):
        ctx.sql("SELECT fasttext_predict('x', '/nonexistent/m.bin', '__label__a')").collect()


def test_embed_with_a_model_equals_the_shell(ctx, tmp_path):
    """`embed(text, model)` across the FFI boundary: the planned type carries the model's d and
    the vectors equal the shell's (the model is all-MiniLM-L6-v2, fetched by scripts/test.sh)."""
    model = os.environ.get("SAMPLEMIX_TEST_MINILM", os.path.join(ROOT, "target", "test-models", "all-MiniLM-L6-v2"))
    assert os.path.exists(os.path.join(model, "model.safetensors")), f"{model}: run scripts/test.sh"
    query = f"SELECT id, embed(text, '{model}') AS e FROM corpus ORDER BY id LIMIT 5"
    ours = ctx.sql(query).to_arrow_table()
    assert str(ours.schema.field("e").type) == "fixed_size_list<item: float>[384]"
    out = tmp_path / "shell.parquet"
    subprocess.run(
        [shell_binary(), "-q", "-c", f"CREATE EXTERNAL TABLE corpus STORED AS PARQUET LOCATION '{SAMPLE}'",
         "-c", f"COPY ({query}) TO '{out}' STORED AS PARQUET"],
        cwd=ROOT, check=True, capture_output=True,
    )
    assert ours.column("e").to_pylist() == pq.read_table(out).column("e").to_pylist()


def test_plain_calls_return_dataframes(ctx):
    ctx.sql("CREATE TABLE docs AS SELECT id, text, embed(text) AS emb FROM corpus").collect()
    c = samplemix.kmeans_fit(ctx, "docs", "emb", k=4, seed=1)
    assert c.count() == 4
    sql_fit = ctx.sql("SELECT * FROM kmeans_fit(docs, 'emb', 4, 100000, 1)").to_arrow_table()
    assert c.to_arrow_table().column("centroid").to_pylist() == sql_fit.column("centroid").to_pylist()
    d = samplemix.near_duplicates(ctx, "corpus", "id", "text")
    assert d.count() == 860
    m = samplemix.quality_model_fit(ctx, pq.read_table(SAMPLE).append_column(
        "label", pa.array([i % 2 for i in range(860)])), "text", "label", "buckets=1024")
    assert m.to_arrow_table().column("levels").to_pylist() == [2]


def test_inputs_from_table_parquet_view_and_pyarrow(ctx):
    ctx.sql("CREATE TABLE docs AS SELECT id, embed(text, 16) AS emb FROM corpus").collect()
    ctx.sql("CREATE VIEW docs_view AS SELECT * FROM docs").collect()
    arrow = ctx.table("docs").to_arrow_table()
    fits = [
        ctx.sql("SELECT centroid FROM kmeans_fit(docs, 'emb', 3) ORDER BY cluster").to_arrow_table(),
        ctx.sql("SELECT centroid FROM kmeans_fit('docs_view', 'emb', 3) ORDER BY cluster").to_arrow_table(),
        samplemix.kmeans_fit(ctx, arrow, "emb", 3).sort("cluster").select("centroid").to_arrow_table(),
        samplemix.kmeans_fit(ctx, ctx.table("docs"), "emb", 3).sort("cluster").select("centroid").to_arrow_table(),
    ]
    assert all(f.column(0).to_pylist() == fits[0].column(0).to_pylist() for f in fits)
    dups = ctx.sql(f"SELECT count(*) AS n FROM near_duplicates('{SAMPLE}', 'id', 'text')").to_arrow_table()
    assert dups.column("n").to_pylist() == [860]


def test_errors_are_python_exceptions_with_the_shell_message(ctx):
    ctx.sql("CREATE TABLE docs AS SELECT id, embed(text) AS emb FROM corpus").collect()
    with pytest.raises(Exception, match="kmeans_fit: argument 'k' must be at least 1, got 0"):
        ctx.sql("SELECT * FROM kmeans_fit(docs, 'emb', 0)").collect()
    with pytest.raises(samplemix.SamplemixError, match="kmeans_fit: argument 'column': table 'samplemix_input_0' has no column 'nope'|has no column 'nope'"):
        samplemix.kmeans_fit(ctx, "docs", "nope", 2)
    with pytest.raises(Exception, match="token_count"):
        ctx.sql("SELECT token_count('x', 'no_such_encoding')").collect()
    with pytest.raises(Exception, match="quality_model_fit: argument 'options': unknown key 'epoch'"):
        ctx.sql("SELECT * FROM quality_model_fit(corpus, 'text', 'id', 'epoch=3')").collect()
    # A constant argument must be one: a column whose rows differ is refused, as in the shell
    # (datafusion-ffi passes literals as arrays too; the extension turns repeated values back).
    with pytest.raises(Exception, match="token_count: argument 'encoding' must be a constant string literal"):
        ctx.sql("SELECT token_count(t, e) FROM (VALUES ('a', 'o200k_base'), ('b', 'cl100k_base')) v(t, e)").collect()
    ones = ctx.sql("SELECT token_count(t, 'cl100k_base') AS n FROM (VALUES ('a b'), ('c')) v(t)").to_arrow_table()
    assert ones.column("n").to_pylist() == [2, 1]
    empty = ctx.sql("SELECT token_count(text, 'cl100k_base') AS n FROM corpus WHERE id = 'none'").to_arrow_table()
    assert empty.num_rows == 0
    # The interpreter is still alive and the context usable.
    assert ctx.sql("SELECT 1 AS one").to_arrow_table().column("one").to_pylist() == [1]


def test_gil_is_released_during_long_work(ctx):
    ctx.sql("CREATE TABLE docs AS SELECT id, text FROM corpus").collect()
    ticks = []
    done = threading.Event()

    def tick():
        while not done.is_set():
            ticks.append(1)
            time.sleep(0.001)

    t = threading.Thread(target=tick)
    t.start()
    before = len(ticks)
    samplemix.near_duplicates(ctx, "docs", "id", "text", threshold=0.5, num_hashes=256, bands=64)
    during = len(ticks) - before
    done.set()
    t.join()
    assert during > 5, f"the other thread ran {during} times while samplemix worked"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(shutil.which("moto_server") is None, reason="moto_server not installed (scripts/test.sh installs it)")
def test_s3_through_the_context_object_stores(tmp_path, monkeypatch):
    import urllib.request
    from datafusion.object_store import AmazonS3

    port = _free_port()
    server = subprocess.Popen(["moto_server", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        endpoint = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(endpoint, timeout=0.2)
                break
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.1)
        req = urllib.request.Request(f"{endpoint}/pyshards", method="PUT")
        urllib.request.urlopen(req, timeout=30)
        # An explicit content type: urllib's default (a form) makes the server parse the body.
        req = urllib.request.Request(f"{endpoint}/pyshards/corpus/part-0.parquet", data=open(SAMPLE, "rb").read(),
                                     method="PUT", headers={"Content-Type": "application/octet-stream"})
        urllib.request.urlopen(req, timeout=30)
        for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
                     "AWS_ENDPOINT_URL": endpoint, "AWS_ALLOW_HTTP": "true"}.items():
            monkeypatch.setenv(k, v)
        ctx = SessionContext()
        samplemix.register(ctx)
        store = AmazonS3(bucket_name="pyshards", region="us-east-1", access_key_id="testing",
                         secret_access_key="testing", endpoint=endpoint, allow_http=True)
        ctx.register_object_store("s3://", store, "pyshards")
        ctx.register_parquet("corpus", "s3://pyshards/corpus/")
        n = ctx.sql("SELECT count(*) AS n, sum(token_count(text)) AS t FROM corpus").to_arrow_table().to_pylist()[0]
        assert n["n"] == 860 and n["t"] > 600_000
        dups = ctx.sql("SELECT count(*) AS n FROM near_duplicates(corpus, 'id', 'text')").to_arrow_table()
        assert dups.column("n").to_pylist() == [860]
        # A model written to the bucket through the context is read back by quality_predict.
        ctx.sql("CREATE VIEW l AS SELECT text, CASE WHEN domain = 'ArXiv' THEN 1 ELSE 0 END AS label FROM corpus").collect()
        ctx.sql("COPY (SELECT * FROM quality_model_fit(l, 'text', 'label', 'buckets=4096')) TO 's3://pyshards/m.parquet'").collect()
        q = ctx.sql("SELECT count(quality_predict(text, 's3://pyshards/m.parquet')) AS n FROM corpus").to_arrow_table()
        assert q.column("n").to_pylist() == [860]
    finally:
        server.terminate()
        server.wait()
