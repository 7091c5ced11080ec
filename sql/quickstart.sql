-- samplemix quickstart: the sample corpus shipped in data/ (860 real documents, 7 domains).
-- Run: cargo run --release -- -f sql/quickstart.sql
CREATE EXTERNAL TABLE docs STORED AS PARQUET LOCATION 'data/sample.parquet';

-- Per-domain documents and tokens (o200k_base), with each domain's share of all tokens.
SELECT domain,
       count(*) AS docs,
       sum(tokens) AS tokens,
       round(100.0 * CAST(sum(tokens) AS DOUBLE) / CAST(max(total) AS DOUBLE), 2) AS token_share_pct
FROM (SELECT domain, token_count(text) AS tokens FROM docs) d
CROSS JOIN (SELECT sum(token_count(text)) AS total FROM docs) t
GROUP BY domain
ORDER BY tokens DESC;
