-- samplemix quickstart: the whole SampleMix pipeline on the sample corpus shipped in data/
-- (860 real documents, 7 domains). Run all three steps:
--   cargo run --release -- -f sql/quickstart.sql -f sql/mix.sql -f sql/report.sql
CREATE EXTERNAL TABLE corpus STORED AS PARQUET LOCATION 'data/sample.parquet';

-- The source corpus: documents and tokens (o200k_base) per domain.
SELECT domain, count(*) AS docs, sum(token_count(text)) AS tokens
FROM corpus GROUP BY domain ORDER BY tokens DESC;

-- 0. Near-duplicates (MinHash LSH, estimated Jaccard of 5-word shingles >= 0.8): one row per
--    document with its group and whether it is the one kept. Diversity would otherwise reward
--    a cluster of near-copies for being compact.
CREATE TABLE dedup AS SELECT * FROM near_duplicates(corpus, 'id', 'text');

-- 1. Score every kept document: tokens, quality q(x) in [0, 10], embedding.
--    The embedding is one variable: the hashed embed(text) by default, or a model directory,
--    e.g. --var "embedding=embed(text, 'models/minilm-static')" (README, "Embeddings").
CREATE TABLE docs AS
SELECT id, domain, text, token_count(text) AS tokens, quality_score(text) AS quality, ${embedding:-embed(text)} AS emb
FROM corpus
WHERE id IN (SELECT id FROM dedup WHERE keep);

-- 2. Diversity: k-means on the embeddings (k = 16, seed 0), then each document's cluster and
--    its distance to the centroid.
CREATE TABLE centroids AS SELECT * FROM kmeans_fit(docs, 'emb', 16, 100000, 0);
CREATE TABLE scored AS
SELECT id, quality, dc['cluster'] AS cluster, dc['distance'] AS distance, tokens
FROM (SELECT id, quality, tokens, diversity_cluster(emb, 'centroids') AS dc FROM docs);

-- 3. Weights and counts: alpha 0.8 (diversity weight), tau 0.2 (the paper's), a budget of
--    640,000 tokens (about the sample's 641,894: T_tgt = T_src as in the paper), seed 0.
--    'tokens' (the default): the mix holds the budget's tokens (the paper's 'documents' form
--    fixes a document count instead and overshoots a token budget when long documents weigh
--    more). Options: systematic rounding (realised tokens at the budget: within 10 tokens of
--    it on this small sample and within 5 on the 12,036-document corpus, seeds 0-9; the
--    independent rounding of the paper scatters by ~3%), at most 4 copies of any document,
--    and clusters under 5 members take the median diversity (a tiny cluster's compactness is
--    noise).
CREATE TABLE weights AS
SELECT * FROM samplemix_weights(scored, centroids, 0.8, 0.2, 640000, 0, 'tokens', 'mean',
                                'rounding=systematic, max_copies=4, min_cluster_size=5');
