-- Learned quality on the sample corpus shipped in data/: label, fit, check, predict, and use
-- the learned score as q(x) in samplemix_weights, next to the heuristic quality_score.
--   cargo run --release -- -f sql/learned_quality.sql
CREATE EXTERNAL TABLE corpus STORED AS PARQUET LOCATION 'data/sample.parquet';

-- 1. Labels. The sample has no human ratings, so this uses the split GPT-3 and DCLM trained
--    their quality classifiers on: reference text (here Wikipedia, books, arXiv papers and
--    speeches: edited, published prose) = 1 against other text (Q&A threads, product reviews)
--    = 0. It is a prose classifier, so code (GitHub) is left out of the labels; what it says
--    about code is an extrapolation. With your own ratings (an LLM's 0-10, human grades), use
--    them as the label instead: levels 0..K-1, and q(x) below becomes 10/(K-1) * quality_predict.
--    Documents are split 80/20 by a seeded hash of their id: the model never sees the 20%.
CREATE VIEW labelled AS
SELECT id, domain, text,
       CASE WHEN domain IN ('Wikipedia', 'Book', 'ArXiv', 'Speeches') THEN 1 ELSE 0 END AS label,
       samplemix_uniform(id, 11) < 0.8 AS in_train
FROM corpus
WHERE domain <> 'GitHub';
CREATE VIEW train AS SELECT text, label FROM labelled WHERE in_train;

-- 2. Fit the ordinal model (here K = 2: one head, P(label > 0)) and look at it.
CREATE TABLE qmodel AS SELECT * FROM quality_model_fit(train, 'text', 'label', 'seed=0');
SELECT levels, rows, options, array_to_string(thresholds, ' ') AS thresholds FROM qmodel;

-- 3. Check it on the 20% it did not see: the share of (reference, other) pairs it orders
--    right (ROC AUC), and its mean score per label.
CREATE TABLE held_out AS
SELECT label, quality_predict(text, 'qmodel') AS q FROM labelled WHERE NOT in_train;
SELECT label, count(*) AS docs, round(avg(q), 3) AS mean_q FROM held_out GROUP BY label ORDER BY label;
SELECT round(avg(CASE WHEN r.q > o.q THEN 1.0 WHEN r.q = o.q THEN 0.5 ELSE 0.0 END), 4) AS held_out_auc
FROM held_out r CROSS JOIN held_out o WHERE r.label = 1 AND o.label = 0;

-- 4. The mix with each q(x) (the quickstart's other steps and parameters: near-duplicates out,
--    k = 16, alpha 0.8, tau 0.2, 640,000 tokens, systematic rounding, at most 4 copies).
CREATE TABLE dedup AS SELECT * FROM near_duplicates(corpus, 'id', 'text');
CREATE TABLE docs AS
SELECT id, domain, token_count(text) AS tokens, embed(text) AS emb,
       quality_score(text) AS q_heuristic,
       10 * quality_predict(text, 'qmodel') AS q_learned
FROM corpus
WHERE id IN (SELECT id FROM dedup WHERE keep);
CREATE TABLE centroids AS SELECT * FROM kmeans_fit(docs, 'emb', 16, 100000, 0);
CREATE TABLE placed AS
SELECT id, domain, tokens, q_heuristic, q_learned, dc['cluster'] AS cluster, dc['distance'] AS distance
FROM (SELECT *, diversity_cluster(emb, 'centroids') AS dc FROM docs);
CREATE VIEW scored_heuristic AS SELECT id, q_heuristic AS quality, p.cluster, distance, tokens FROM placed p;
CREATE VIEW scored_learned AS SELECT id, q_learned AS quality, p.cluster, distance, tokens FROM placed p;
CREATE TABLE mixes AS
SELECT 'heuristic' AS q, id, count FROM samplemix_weights(scored_heuristic, centroids, 0.8, 0.2, 640000, 0, 'tokens', 'mean', 'rounding=systematic, max_copies=4, min_cluster_size=5')
UNION ALL
SELECT 'learned', id, count FROM samplemix_weights(scored_learned, centroids, 0.8, 0.2, 640000, 0, 'tokens', 'mean', 'rounding=systematic, max_copies=4, min_cluster_size=5');

-- Per domain and q(x): mean quality (0-10), share of the source tokens and of the mix's.
SELECT p.domain,
       round(avg(CASE WHEN m.q = 'heuristic' THEN p.q_heuristic END), 2) AS q_heuristic,
       round(avg(CASE WHEN m.q = 'learned' THEN p.q_learned END), 2) AS q_learned,
       round(100.0 * sum(CASE WHEN m.q = 'learned' THEN p.tokens END) / max(t.src), 1) AS src_pct,
       round(100.0 * sum(CASE WHEN m.q = 'heuristic' THEN m.count * p.tokens END) / max(t.heuristic), 1) AS mix_pct_heuristic,
       round(100.0 * sum(CASE WHEN m.q = 'learned' THEN m.count * p.tokens END) / max(t.learned), 1) AS mix_pct_learned
FROM placed p
JOIN mixes m ON m.id = p.id
CROSS JOIN (SELECT CAST(sum(CASE WHEN m.q = 'learned' THEN p.tokens END) AS DOUBLE) AS src,
                   CAST(sum(CASE WHEN m.q = 'heuristic' THEN m.count * p.tokens END) AS DOUBLE) AS heuristic,
                   CAST(sum(CASE WHEN m.q = 'learned' THEN m.count * p.tokens END) AS DOUBLE) AS learned
            FROM placed p JOIN mixes m ON m.id = p.id) t
GROUP BY p.domain
ORDER BY mix_pct_learned DESC;

-- What sets GitHub's share is diversity, not quality: at alpha 0.8 a document's weight is 80%
-- diversity, and the quality term can move its expected copies by at most e^((1-alpha)/tau)
-- = e^1 against e^(alpha/tau) = e^4 for diversity. GitHub's documents lie farthest from their
-- centroids, in clusters far from the prose, so the method gives them the most copies whatever
-- q(x) says. The share of code is a choice of alpha (README, "Learned quality in the mix"):
SELECT alpha, round(100.0 * sum(CASE WHEN p.domain = 'GitHub' THEN w.count * p.tokens ELSE 0 END) / sum(w.count * p.tokens), 1) AS github_mix_pct_learned
FROM (
  SELECT 0.8 AS alpha, id, count FROM samplemix_weights(scored_learned, centroids, 0.8, 0.2, 640000, 0, 'tokens', 'mean', 'rounding=systematic, max_copies=4, min_cluster_size=5')
  UNION ALL
  SELECT 0.5, id, count FROM samplemix_weights(scored_learned, centroids, 0.5, 0.2, 640000, 0, 'tokens', 'mean', 'rounding=systematic, max_copies=4, min_cluster_size=5')
) w JOIN placed p ON p.id = w.id
GROUP BY alpha
ORDER BY alpha DESC;
