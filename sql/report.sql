-- Report of the mix (needs corpus, dedup, docs, scored and weights from sql/quickstart.sql or
-- sql/pipeline.sql).

-- Near-duplicates removed before scoring, per domain.
SELECT c.domain, count(*) AS docs, sum(CASE WHEN n.keep THEN 0 ELSE 1 END) AS near_duplicates_removed
FROM corpus c JOIN dedup n ON n.id = c.id
GROUP BY c.domain ORDER BY c.domain;

-- Per domain: source vs mixed documents and tokens, their shares, mean quality, the fraction of
-- documents dropped (count = 0) and the most copies of one document.
SELECT domain,
       count(*) AS src_docs,
       sum(d.tokens) AS src_tokens,
       round(100.0 * sum(d.tokens) / max(t.src_total), 2) AS src_share_pct,
       sum(w.count) AS mix_docs,
       sum(w.count * d.tokens) AS mix_tokens,
       round(100.0 * sum(w.count * d.tokens) / max(t.mix_total), 2) AS mix_share_pct,
       round(avg(d.quality), 2) AS mean_quality,
       round(avg(CASE WHEN w.count = 0 THEN 1.0 ELSE 0.0 END), 3) AS dropped_frac,
       max(w.count) AS max_repeats
FROM docs d
JOIN weights w ON w.id = d.id
CROSS JOIN (SELECT CAST(sum(d2.tokens) AS DOUBLE) AS src_total,
                   CAST(sum(w2.count * d2.tokens) AS DOUBLE) AS mix_total
            FROM docs d2 JOIN weights w2 ON w2.id = d2.id) t
GROUP BY domain
ORDER BY mix_tokens DESC;

-- Per quality bucket (q rounded down to an integer, 0..10).
SELECT CAST(floor(d.quality) AS INT) AS quality_bucket,
       count(*) AS src_docs,
       sum(w.count) AS mix_docs,
       round(avg(w.expected_count), 3) AS mean_expected_count,
       round(avg(CASE WHEN w.count = 0 THEN 1.0 ELSE 0.0 END), 3) AS dropped_frac
FROM docs d JOIN weights w ON w.id = d.id
GROUP BY 1 ORDER BY 1;

-- Per cluster: size, diversity (separation / compactness), and what the mix takes from it.
SELECT s.cluster,
       count(*) AS src_docs,
       round(max(w.diversity), 3) AS diversity,
       round(avg(d.quality), 2) AS mean_quality,
       sum(w.count) AS mix_docs,
       max(w.count) AS max_repeats,
       string_agg(DISTINCT d.domain, ',' ORDER BY d.domain) AS domains
FROM scored s JOIN weights w ON w.id = s.id JOIN docs d ON d.id = s.id
GROUP BY s.cluster ORDER BY s.cluster;

-- Totals: documents and tokens in, expected and realised out.
SELECT count(*) AS src_docs, sum(d.tokens) AS src_tokens,
       round(sum(w.expected_count), 3) AS expected_docs, sum(w.count) AS mix_docs,
       sum(w.count * d.tokens) AS mix_tokens
FROM docs d JOIN weights w ON w.id = d.id;
