"""The quickstart (sql/quickstart.sql, steps 0-3) from Python: the same SQL, the same counts.

    pip install ./python          # or see README "From Python"
    python3 examples/quickstart.py [data/sample.parquet] [out_dir]

Prints the mix per domain and writes the weights to OUT_DIR/weights.parquet.
"""

from __future__ import annotations

import os
import sys

from datafusion import SessionContext

import samplemix


def main(corpus: str = "data/sample.parquet", out: str = "out/python") -> None:
    os.makedirs(out, exist_ok=True)
    ctx = SessionContext()
    samplemix.register(ctx)
    ctx.register_parquet("corpus", corpus)

    # 0. Near-duplicates; 1. tokens, quality, embedding of each kept document.
    ctx.sql("CREATE TABLE dedup AS SELECT * FROM near_duplicates(corpus, 'id', 'text')").collect()
    ctx.sql(
        "CREATE TABLE docs AS SELECT id, domain, text, token_count(text) AS tokens, "
        "quality_score(text) AS quality, embed(text) AS emb "
        "FROM corpus WHERE id IN (SELECT id FROM dedup WHERE keep)"
    ).collect()

    # 2. k-means; diversity_cluster reads the centroids by path in Python (the foreign session
    #    that scalar functions see has no tables of ours), so write them out first.
    ctx.sql("CREATE TABLE centroids AS SELECT * FROM kmeans_fit(docs, 'emb', 16, 100000, 0)").collect()
    centroids = os.path.join(out, "centroids.parquet")
    ctx.sql(f"COPY centroids TO '{centroids}' STORED AS PARQUET").collect()
    ctx.sql(
        "CREATE TABLE scored AS SELECT id, quality, dc['cluster'] AS cluster, dc['distance'] AS distance, tokens "
        f"FROM (SELECT id, quality, tokens, diversity_cluster(emb, '{centroids}') AS dc FROM docs)"
    ).collect()

    # 3. Weights and counts, as the plain Python call (the same as SELECT * FROM samplemix_weights(...)).
    weights = samplemix.weights(
        ctx, "scored", "centroids", alpha=0.8, tau=0.2, budget_tokens=640_000, seed=0,
        options="rounding=systematic, max_copies=4, min_cluster_size=5",
    )
    ctx.register_view("weights", weights)
    ctx.sql(f"COPY weights TO '{os.path.join(out, 'weights.parquet')}' STORED AS PARQUET").collect()
    ctx.sql(
        "SELECT d.domain, sum(d.tokens) AS source_tokens, sum(w.count * d.tokens) AS mixed_tokens "
        "FROM docs d JOIN weights w ON d.id = w.id GROUP BY d.domain ORDER BY mixed_tokens DESC"
    ).show()


if __name__ == "__main__":
    main(*sys.argv[1:])
