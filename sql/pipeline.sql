-- samplemix at scale: the SampleMix pipeline with every step written as Parquet, so that it
-- runs unchanged in one process and on a Ballista cluster (samplemix --remote df://HOST:PORT),
-- and each step can be rerun or inspected on its own.
--
-- Parameters (samplemix --var NAME=VALUE; a missing one is an error, nothing is guessed):
--   input  the corpus: a Parquet file, a folder of shards or a URL, with columns id, domain, text
--   work   a folder (ending in '/') for the steps and the result: dedup/, dedup_domains.parquet,
--          docs/, centroids.parquet, scored/, weights/, run.parquet, summary.parquet, mixed/ (a
--          rerun replaces each of them); `samplemix report WORK` draws the mix from the small
--          ones (summary, centroids, dedup_domains, run)
--   budget the token budget T_tgt of the mix (the sample corpus has 641,894 tokens)
--
--   samplemix --var input=data/sample.parquet --var work=out/run/ --var budget=640000 \
--             -f sql/pipeline.sql -f sql/report.sql
--   samplemix --remote df://127.0.0.1:50050 --var input=s3://corpus/shards/ \
--             --var work=s3://mixes/run-1/ --var budget=1000000000 -f sql/pipeline.sql
--
-- On a cluster every location must be one the executors can reach (S3, or a path on a file
-- system they share). The mix parameters are the quickstart's (k = 16, alpha 0.8, tau 0.2,
-- seed 0); edit them here for your run.
CREATE EXTERNAL TABLE corpus STORED AS PARQUET LOCATION '${input}';

-- 0. Near-duplicates (MinHash LSH, estimated Jaccard of 5-word shingles >= 0.8, 112 hashes in
--    14 bands): every step (signatures, verified pairs, the rounds of label propagation) runs
--    where the scan runs and is written under ${work}dedup-work/; the client only counts rounds.
COPY (SELECT * FROM near_duplicates(corpus, 'id', 'text', 0.8, 112, 14, 'work=${work}dedup-work/'))
TO '${work}dedup/' STORED AS PARQUET;
CREATE EXTERNAL TABLE dedup STORED AS PARQUET LOCATION '${work}dedup/';

-- Documents and near-duplicates removed per domain (a few rows, for the report).
COPY (
  SELECT c.domain, count(*) AS docs, sum(CASE WHEN n.keep THEN 0 ELSE 1 END) AS removed
  FROM corpus c JOIN dedup n ON n.id = c.id
  GROUP BY c.domain
) TO '${work}dedup_domains.parquet' STORED AS PARQUET;

-- 1. Per kept document: tokens (o200k_base), quality q(x) in [0, 10], embedding.
--    The embedding is one variable: the hashed embed(text) by default, or a model directory,
--    e.g. --var "embedding=embed(text, 'models/minilm-static')" (README, "Embeddings").
COPY (
  SELECT id, domain, token_count(text) AS tokens, quality_score(text) AS quality, ${embedding:-embed(text)} AS emb
  FROM corpus
  WHERE id IN (SELECT id FROM dedup WHERE keep)
) TO '${work}docs/' STORED AS PARQUET;
CREATE EXTERNAL TABLE docs STORED AS PARQUET LOCATION '${work}docs/';

-- 2. k-means on a seeded, order-independent sample of the embeddings (fitted in the client
--    process; the sample is read from the cluster), kept as a Parquet file that every
--    executor reads for diversity_cluster.
COPY (SELECT * FROM kmeans_fit(docs, 'emb', 16, 100000, 0))
TO '${work}centroids.parquet' STORED AS PARQUET;
CREATE EXTERNAL TABLE centroids STORED AS PARQUET LOCATION '${work}centroids.parquet';

COPY (
  SELECT id, domain, quality, dc['cluster'] AS cluster, dc['distance'] AS distance, tokens
  FROM (SELECT id, domain, quality, tokens, diversity_cluster(emb, '${work}centroids.parquet') AS dc FROM docs)
) TO '${work}scored/' STORED AS PARQUET;
CREATE EXTERNAL TABLE scored STORED AS PARQUET LOCATION '${work}scored/';

-- 3. Weights and counts (see sql/quickstart.sql for what each argument means).
COPY (
  SELECT * FROM samplemix_weights(
    scored, centroids, 0.8, 0.2, ${budget}, 0, 'tokens', 'mean',
    'rounding=systematic, max_copies=4, min_cluster_size=5')
) TO '${work}weights/' STORED AS PARQUET;
CREATE EXTERNAL TABLE weights STORED AS PARQUET LOCATION '${work}weights/';

-- The run's token budget, for the report's budget vs realised tokens.
COPY (SELECT CAST(${budget} AS DOUBLE) AS budget_tokens) TO '${work}run.parquet' STORED AS PARQUET;

-- The mix summarised for `samplemix report`: one row per domain, cluster, quality bin and
-- number of copies, so at most domains x k x 10 x (max_copies + 1) rows for any corpus size;
-- the join runs here (on the executors with --remote), the report reads only this.
COPY (
  SELECT s.domain, s.cluster,
         least(greatest(CAST(floor(s.quality) AS BIGINT), 0), 9) AS quality_bin,
         w.count AS copies,
         count(*) AS docs, sum(s.tokens) AS tokens,
         count(s.quality) AS quality_docs, sum(s.quality) AS quality_sum,
         sum(w.expected_count) AS expected_docs,
         sum(w.expected_count * s.tokens) AS expected_tokens,
         max(w.diversity) AS diversity
  FROM scored s JOIN weights w ON w.id = s.id
  GROUP BY 1, 2, 3, 4
) TO '${work}summary.parquet' STORED AS PARQUET;

-- 4. The mixed dataset: `count` copies of each document with their copy index, in 8 shards
--    (shard=0/ ... shard=7/, picked by a hash of id#copy), each shard's rows in the
--    deterministic shuffle order of samplemix_uniform(id#copy, seed 0).
COPY (
  SELECT id, domain, text, copy,
         CAST(floor(samplemix_uniform(concat(id, '#', CAST(copy AS VARCHAR)), 1) * 8) AS INT) AS shard
  FROM (
    SELECT c.id, c.domain, c.text, unnest(generate_series(1, w.count)) AS copy
    FROM weights w JOIN corpus c ON w.id = c.id
    WHERE w.count > 0
  )
  ORDER BY samplemix_uniform(concat(id, '#', CAST(copy AS VARCHAR)), 0), id, copy
) TO '${work}mixed/' STORED AS PARQUET PARTITIONED BY (shard)
OPTIONS ('format.max_row_group_size' '32768', 'format.compression' 'zstd(3)');
