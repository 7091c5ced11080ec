"""samplemix for datafusion-python 55: SampleMix (arXiv 2503.01506) per-sample data mixing as SQL.

    from datafusion import SessionContext
    import samplemix

    ctx = SessionContext()
    samplemix.register(ctx)
    ctx.sql("SELECT token_count('hello world')").show()

`register(ctx)` adds every samplemix scalar, aggregate and window function (through
datafusion-ffi) and every table function (`kmeans_fit`, `near_duplicates`,
`samplemix_weights`, `quality_model_fit`, `samplemix_help`) to `ctx`, so the SQL of the
samplemix shell runs unchanged, with two differences:

- A table function reads its input tables (registered tables, views, Parquet paths) from `ctx`
  into memory and runs in a samplemix session of its own: its inputs must fit in memory.
- Functions that read a file (`diversity_cluster`'s centroids, `quality_predict`'s model,
  `fasttext_predict`'s model) take a path or URL, not a table name (write the table with
  `COPY ... TO 'centroids.parquet'` first). S3 paths use the `AWS_*` environment variables.

The same table functions are plain Python calls returning DataFrames: `kmeans_fit`,
`near_duplicates`, `weights`, `quality_model_fit`. Errors of samplemix functions raise
`SamplemixError` (table functions) or datafusion's exception (scalar functions), with the
samplemix shell's message.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Sequence, Union

import pyarrow as pa
from datafusion import DataFrame, SessionContext, udaf, udf, udtf, udwf

from . import _samplemix
from ._samplemix import SamplemixError

__all__ = [
    "SamplemixError",
    "register",
    "kmeans_fit",
    "near_duplicates",
    "weights",
    "quality_model_fit",
    "TABLE_FUNCTIONS",
]

#: Table functions and how many of their leading arguments name input tables.
TABLE_FUNCTIONS = {
    "kmeans_fit": 1,
    "near_duplicates": 1,
    "samplemix_weights": 2,
    "quality_model_fit": 1,
    "samplemix_help": 0,
}

#: An input table: a table or view name or Parquet path/URL of the context, a DataFrame, or a
#: pyarrow Table.
TableLike = Union[str, DataFrame, pa.Table]


def _in_thread(fn: Callable[[], Any]) -> Any:
    """Run `fn` on a fresh thread and return its result.

    datafusion-python runs a table function's callback inside its Tokio runtime, where reading
    a table ("Cannot start a runtime from within a runtime") fails; a thread of its own can.
    """
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - re-raised below, in the caller's thread
            out["error"] = e

    thread = threading.Thread(target=run, name="samplemix-read")
    thread.start()
    thread.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


def _is_location(name: str) -> bool:
    lowered = name.lower()
    return "/" in name or "://" in name or lowered.endswith((".parquet", ".csv", ".json", ".jsonl", ".ndjson", ".avro"))


def _read(ctx: SessionContext, table: TableLike) -> pa.Table:
    """The whole of `table` as a pyarrow Table."""
    if isinstance(table, pa.Table):
        return table
    if isinstance(table, DataFrame):
        return table.to_arrow_table()
    if not isinstance(table, str):
        raise TypeError(f"samplemix: a table argument must be a name, path, DataFrame or pyarrow Table, got {type(table).__name__}")
    if _is_location(table):
        # A SessionContext of datafusion-python reads no URL tables in SQL: read by format.
        lowered = table.lower()
        if lowered.endswith(".csv"):
            return ctx.read_csv(table).to_arrow_table()
        if lowered.endswith((".json", ".jsonl", ".ndjson")):
            return ctx.read_json(table).to_arrow_table()
        if lowered.endswith(".avro"):
            return ctx.read_avro(table).to_arrow_table()
        return ctx.read_parquet(table).to_arrow_table()
    return ctx.table(table).to_arrow_table()


def _sql_literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"samplemix: unsupported argument {value!r} ({type(value).__name__})")


def _call(ctx: SessionContext, name: str, args: Sequence[Any]) -> pa.Table:
    """Run table function `name` on `args`; the first TABLE_FUNCTIONS[name] name tables."""
    tables = []
    sql_args = []
    for i, value in enumerate(args):
        if i < TABLE_FUNCTIONS[name]:
            data = _read(ctx, value)
            alias = f"samplemix_input_{i}"
            tables.append((alias, data.schema, data.to_batches()))
            sql_args.append(alias)
        else:
            sql_args.append(_sql_literal(value))
    schema, batches = _samplemix.run_sql(tables, f"SELECT * FROM {name}({', '.join(sql_args)})")
    return pa.Table.from_batches(batches, schema=schema)


def _literal(expr: Any) -> Any:
    """The Python value of an argument of a SQL table function call: a literal, or a bare
    identifier (`kmeans_fit(docs, ...)`), which names a table as in the shell."""
    variant = expr.to_variant()
    variant_kind = type(variant).__name__
    if variant_kind == "Column":
        return variant.qualified_name() if variant.relation() else variant.name()
    if variant_kind != "Literal":
        raise SamplemixError(f"samplemix: table function arguments must be literals or table names, got {expr}")
    kind = str(variant.data_type())
    if kind in ("Utf8", "LargeUtf8"):
        return variant.value_string()
    if kind == "Utf8View":
        # The literal's display is its value, unquoted and unescaped (value_string() reads Utf8 only).
        return str(variant)
    if kind == "Boolean":
        return variant.value_bool()
    if kind in ("Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64", "Float32", "Float64"):
        getter = "value_" + kind.lower().replace("uint", "u").replace("int", "i").replace("float", "f")
        return getattr(variant, getter)()
    if kind == "Null":
        return None
    raise SamplemixError(f"samplemix: unsupported literal argument {expr} ({kind})")


def _table_function(name: str) -> Callable[..., Any]:
    def call(*exprs: Any, session: SessionContext) -> Any:
        values = [_literal(e) for e in exprs]
        result = _in_thread(lambda: _call(session, name, values))
        return _in_thread(lambda: session.from_arrow(result).into_view())

    call.__name__ = name
    return call


def register(ctx: SessionContext) -> None:
    """Register every samplemix function in `ctx` (scalar, aggregate, window and table)."""
    for f in _samplemix.scalar_functions():
        ctx.register_udf(udf(f))
    for f in _samplemix.aggregate_functions():
        ctx.register_udaf(udaf(f))
    for f in _samplemix.window_functions():
        ctx.register_udwf(udwf(f))
    for name in _samplemix.table_function_names():
        ctx.register_udtf(udtf(_table_function(name), name, with_session=True))


def kmeans_fit(
    ctx: SessionContext,
    table: TableLike,
    column: str,
    k: int,
    sample_rows: int = 100_000,
    seed: int = 0,
    max_iter: int = 100,
    metric: str = "cosine",
) -> DataFrame:
    """k centroids of an embedding column (see `samplemix_help()`): cluster, size, centroid, metric."""
    return ctx.from_arrow(_call(ctx, "kmeans_fit", [table, column, k, sample_rows, seed, max_iter, metric]))


def near_duplicates(
    ctx: SessionContext,
    table: TableLike,
    id_column: str,
    text_column: str,
    threshold: float = 0.8,
    num_hashes: int = 112,
    bands: int | None = None,
    options: str = "",
) -> DataFrame:
    """Near-duplicate groups by MinHash LSH: id, group_id, keep (one per group)."""
    args: list[Any] = [table, id_column, text_column, threshold, num_hashes]
    if bands is not None or options:
        if bands is None:
            raise ValueError("samplemix.near_duplicates: give bands together with options")
        args += [bands] + ([options] if options else [])
    return ctx.from_arrow(_call(ctx, "near_duplicates", args))


def weights(
    ctx: SessionContext,
    scored: TableLike,
    centroids: TableLike,
    alpha: float = 0.8,
    tau: float = 0.2,
    budget_tokens: int = 0,
    seed: int = 0,
    mode: str = "tokens",
    separation: str = "mean",
    options: str = "",
) -> DataFrame:
    """SampleMix weights and counts per document (`samplemix_weights`)."""
    args = [scored, centroids, float(alpha), float(tau), budget_tokens, seed, mode, separation]
    if options:
        args.append(options)
    return ctx.from_arrow(_call(ctx, "samplemix_weights", args))


def quality_model_fit(
    ctx: SessionContext,
    table: TableLike,
    text_column: str,
    label_column: str,
    options: str = "",
) -> DataFrame:
    """Fit the ordinal quality model to labelled texts: one row, the model (`quality_predict`)."""
    return ctx.from_arrow(_call(ctx, "quality_model_fit", [table, text_column, label_column, options]))
