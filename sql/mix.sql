-- Write the mixed dataset: `count` copies of each document, each with its copy index (1..count),
-- in a deterministic shuffle order (samplemix_uniform of id, copy and seed), as Parquet with
-- object-store-sized row groups (32,768 rows), as one file that a rerun overwrites. Needs the
-- tables docs and weights of sql/quickstart.sql. For S3, change the location to
-- 's3://bucket/mixed.parquet' (and add OPTIONS or set the AWS_* environment variables).
COPY (
  SELECT id, domain, text, copy
  FROM (
    SELECT d.id, d.domain, d.text, unnest(generate_series(1, w.count)) AS copy
    FROM weights w JOIN docs d ON w.id = d.id
    WHERE w.count > 0
  )
  ORDER BY samplemix_uniform(concat(id, '#', CAST(copy AS VARCHAR)), 0), id, copy
) TO 'out/mixed.parquet' STORED AS PARQUET
OPTIONS ('format.max_row_group_size' '32768', 'format.compression' 'zstd(3)');
