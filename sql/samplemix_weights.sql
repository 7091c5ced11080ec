-- SampleMix weights and counts in plain SQL: the same computation as the table function
--   samplemix_weights(scored, centroids, alpha, tau, budget_tokens, seed)   (the defaults: 'tokens'
--   mode, 'mean' separation, independent rounding, no cap, no small-cluster guard), written with ordinary SQL plus samplemix's scalar/aggregate helpers.
-- Inputs: scored(id, quality, cluster, distance, tokens); centroids (the kmeans_fit schema);
--         mix_params(alpha DOUBLE, tau DOUBLE, budget_tokens DOUBLE, seed BIGINT), one row.
-- Output: the view samplemix_weights_sql(id, quality_norm, diversity, diversity_norm, weight,
--         expected_count, count).
-- This form reads `scored` three times (per-cluster statistics, Z, output). The table function
-- reads it twice: it factors exp((w - w_max)/tau) into a per-cluster and a per-row part so
-- that Z comes with the per-cluster statistics (udfs/src/mix/udtf.rs); expected counts agree
-- to about 1e-15 (relative), integer counts are the same (tests/mix.rs checks both).
-- rounding=systematic in this form: replace `count` by
--   samplemix_systematic_round(c, tokens, id, seed, 'tokens') OVER ()
-- (the window function the table function uses; 'documents' for the document-count form).
CREATE OR REPLACE VIEW samplemix_weights_sql AS
WITH
-- Separation of each centroid: mean distance to the other centroids (0 when alone).
sep AS (
  SELECT CAST(a.cluster AS BIGINT) AS cl,
         samplemix_exact_sum(samplemix_distance(a.centroid, b.centroid, a.metric)) / CAST(count(1) AS DOUBLE) AS sep
  FROM centroids a JOIN centroids b ON CAST(a.cluster AS BIGINT) <> CAST(b.cluster AS BIGINT)
  GROUP BY 1),
known AS (
  SELECT CAST(c.cluster AS BIGINT) AS cl, coalesce(sep.sep, 0.0) AS sep
  FROM centroids c LEFT JOIN sep ON CAST(c.cluster AS BIGINT) = sep.cl),
-- Per cluster: size, tokens, compactness (mean distance), quality range.
per_cluster AS (
  SELECT CAST(cluster AS BIGINT) AS cl, count(1) AS n, sum(CAST(tokens AS BIGINT)) AS t,
         samplemix_exact_sum(CAST(distance AS DOUBLE)) / CAST(count(1) AS DOUBLE) AS comp,
         min(CAST(quality AS DOUBLE)) AS qmin_j, max(CAST(quality AS DOUBLE)) AS qmax_j
  FROM scored GROUP BY 1),
-- Global statistics over the k cluster rows (windows over k rows, not over the corpus).
g AS (
  SELECT p.cl, p.qmax_j, p.comp, k.sep,
         sum(p.n) OVER () AS gn, sum(p.t) OVER () AS gt,
         min(p.qmin_j) OVER () AS gqmin, max(p.qmax_j) OVER () AS gqmax,
         min(CASE WHEN p.comp > 0.0 THEN p.comp END) OVER () AS gcmin
  FROM per_cluster p JOIN known k ON p.cl = samplemix_assert(k.cl, k.cl IS NOT NULL, 'unknown cluster ', k.cl)),
d AS (
  SELECT *, sep / CASE WHEN comp > 0.0 THEN comp ELSE coalesce(gcmin, 1.0) END AS div FROM g),
dn AS (
  SELECT *, CASE WHEN max(div) OVER () > min(div) OVER ()
                 THEN (div - min(div) OVER ()) / (max(div) OVER () - min(div) OVER ()) ELSE 0.0 END AS dnorm
  FROM d),
clusters AS (
  SELECT dn.*,
         max(p.alpha * dnorm + (1.0 - p.alpha) *
             CASE WHEN gqmax > gqmin THEN (qmax_j - gqmin) / (gqmax - gqmin) ELSE 0.0 END) OVER () AS gwmax
  FROM dn CROSS JOIN mix_params p),
-- Per document: normalised quality, weight, softmax numerator.
rows AS (
  SELECT s.id, c.div, c.dnorm, c.gn, c.gt, CAST(s.tokens AS BIGINT) AS tokens,
         CASE WHEN c.gqmax > c.gqmin THEN (CAST(s.quality AS DOUBLE) - c.gqmin) / (c.gqmax - c.gqmin) ELSE 0.0 END AS qn,
         c.gwmax, p.alpha, p.tau, p.budget_tokens, p.seed
  FROM clusters c JOIN scored s ON c.cl = CAST(s.cluster AS BIGINT) CROSS JOIN mix_params p),
weighted AS (
  SELECT *, alpha * dnorm + (1.0 - alpha) * qn AS w, exp((alpha * dnorm + (1.0 - alpha) * qn - gwmax) / tau) AS e
  FROM rows),
-- 'tokens' mode: Σ c·tokens = budget. (The paper's 'documents' form would be
-- CAST(gn AS DOUBLE) * budget_tokens / CAST(gt AS DOUBLE) * e / samplemix_exact_sum(e).)
z AS (SELECT samplemix_exact_sum(e * CAST(tokens AS DOUBLE)) AS zt FROM weighted),
counted AS (
  SELECT weighted.*, budget_tokens * e / z.zt AS c
  FROM z CROSS JOIN weighted)
SELECT id, qn AS quality_norm, div AS diversity, dnorm AS diversity_norm, w AS weight,
       c AS expected_count,
       CAST(floor(c) AS BIGINT) + CASE WHEN samplemix_uniform(id, seed) < c - floor(c) THEN 1 ELSE 0 END AS count
FROM counted;
