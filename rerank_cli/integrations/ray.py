"""``rerank batch`` past one machine: :class:`Rerank`, a callable class for Ray Data's
``Dataset.map_batches``.

Each row is a ``rerank batch`` input line — ``id``, ``query``, ``documents`` (strings, or
objects whose text is at ``field`` and id at ``id_field``), an optional ``instruction`` — and
comes back with ``results``: the very list ``rerank batch`` writes for that query. Each actor
holds one :class:`~rerank_cli.Reranker` session (one connection pool of ``concurrency``
requests in flight, one score cache on the node's disk) and ranks the queries of a batch
concurrently on it::

    import ray
    from rerank_cli.integrations.ray import Rerank

    ranked = ray.data.read_json("queries.jsonl").map_batches(
        Rerank,
        fn_constructor_kwargs={"base_url": "http://gpu:8000/v1", "concurrency": 8, "top_k": 10},
        compute=ray.data.ActorPoolStrategy(size=4),  # 4 actors × 8 = 32 requests in flight
        num_cpus=0.25,  # an actor mostly waits on the API
        batch_size=64,
        batch_format="pyarrow",
    )

The key, like every setting not given here, comes from the worker's environment and config file
(``GR_KEY``, ``rerank config set api_key …`` on each node), as for the CLI: keep it out of
``fn_constructor_kwargs``, which the cluster stores.

Importing this module needs Ray Data (``pip install 'rerank-cli[ray]'``); importing
``rerank_cli`` never imports Ray.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Mapping
from typing import Any

# Absolute imports throughout: ``ray`` below is Ray, never this module.
if importlib.util.find_spec("ray") is None or importlib.util.find_spec("pyarrow") is None:
    raise ImportError(
        "rerank_cli.integrations.ray needs Ray Data: pip install 'rerank-cli[ray]'",
        name="ray",
    )

from rerank_cli.errors import ApiError, InputError
from rerank_cli.jobs.batch_job import plan_groups, score_groups, stops_run
from rerank_cli.session import Reranker, filters_of
from rerank_cli.sources.queries import Query, id_key, query_of
from rerank_cli.sources.records import ReadOptions, ReadReport
from rerank_cli.writers import runs

__all__ = ["Rerank"]

# The columns of a row that make its query; the others pass through (their values unchanged).
QUERY_COLUMNS = ("id", "query", "documents", "instruction")
SOURCE = "ray"  # the documents' source, as a file name is for rerank batch


class Rerank:
    """A ``map_batches`` callable: every row gains ``results`` (the list ``rerank batch``
    writes for its query, best first) and ``error`` (None; for a query that failed, the
    ``{"code", "status", "message"}`` of batch's error line, with ``results`` None). Any
    ``batch_format`` goes in; an Arrow table comes out, its two columns of one type in every
    batch (``pyarrow`` saves converting the other columns).

    ``settings`` are :class:`~rerank_cli.Reranker`'s (config-file or long option names:
    ``profile``, ``base_url``, ``api_key``, ``concurrency``, ``no_cache`` …), resolved on the
    worker as the CLI resolves them (option → environment → config file → profile →
    default). The others are ``rerank batch``'s options of the same names: ``top_k``,
    ``min_score``, ``field``, ``id_field``, ``no_text``, ``fail_fast``.

    Failures go as in ``rerank batch``: a query the API failed or refused gets its ``error``
    and the others go on — unless ``fail_fast``, or the key was rejected (401) or the account
    is empty (402), which raise (the task fails); an invalid row raises :class:`InputError`
    before anything of its batch is sent.
    """

    def __init__(
        self,
        *,
        top_k: int | None = None,
        min_score: float | None = None,
        field: str | None = None,
        id_field: str | None = None,
        no_text: bool = False,
        fail_fast: bool = False,
        **settings: Any,
    ) -> None:
        self.filters = filters_of(top_k, min_score)
        self.read_options = ReadOptions(format="jsonl", field=field, id_field=id_field)
        self.with_text = not no_text
        self.fail_fast = fail_fast
        self.session = Reranker(**settings)
        if self.session.settings.max_docs is not None or self.session.settings.max_cost is not None:
            self.session.env.warn(
                "max_docs and max_cost are not applied by rerank_cli.integrations.ray: each "
                "actor sees a part of the dataset (estimate the run with rerank batch --dry-run)"
            )

    def __call__(self, batch: Any) -> Any:
        rows = read_rows(batch)
        queries = [self.query(row, number) for number, row in enumerate(rows, 1)]
        results: list[list[dict[str, Any]] | None] = [None] * len(rows)
        errors: list[dict[str, Any] | None] = [None] * len(rows)
        scoring = score_groups(self.session, plan_groups(self.session, queries), self.filters)
        try:
            for group, outcome in scoring:
                if isinstance(outcome, ApiError):
                    if self.fail_fast or stops_run(outcome):
                        raise outcome
                    code = int(outcome.exit_code)
                    for line in group.lines:
                        errors[line.line - 1] = runs.error_record(
                            code, outcome.message, outcome.status
                        )
                        self.session.env.warn(f"query {line.key.decode()}: {outcome.message}")
                else:
                    for line, ranked in outcome:
                        results[line.line - 1] = runs.result_records(ranked, self.with_text)
        finally:
            scoring.close()
        arrays = result_arrays(
            results, errors, self.read_options.id_field is not None, self.with_text
        )
        return with_columns(batch, rows, arrays)

    def query(self, row: dict[str, Any], number: int) -> Query:
        """A row's query, read as ``rerank batch`` reads a line. A row without an id (no
        column, or null) takes its position in the batch, which only messages show."""
        if row.get("id") is None:
            row = {key: value for key, value in row.items() if key != "id"}
        try:
            return query_of(row, SOURCE, number, self.read_options, ReadReport())
        except ValueError as error:
            where = f"row {number} of a batch"
            if isinstance(row.get("id"), (str, int, float)) and not isinstance(row["id"], bool):
                where = f"row with id {id_key(row['id']).decode()}"
            raise InputError(f"{where}: {error}") from None

    def close(self) -> None:
        """Close the session (its connections and cache). Idempotent."""
        self.session.close()

    def __del__(self) -> None:
        # Ray Data drops the callable when an actor shuts down gracefully. At interpreter
        # exit the session's loop thread may be gone already: the process ends it then.
        session = getattr(self, "session", None)
        if session is not None and not sys.is_finalizing():
            session.close()


# -- Ray Data's batch formats: a pyarrow Table, a pandas DataFrame, or a dict of numpy arrays


def read_rows(batch: Any) -> list[dict[str, Any]]:
    """The query columns of each row, as plain Python values (what JSON would give)."""
    if isinstance(batch, Mapping):
        columns = [name for name in QUERY_COLUMNS if name in batch]
        size = len(next(iter(batch.values()))) if batch else 0
        return [{name: plain(batch[name][i]) for name in columns} for i in range(size)]
    names = list(batch.columns if not is_arrow(batch) else batch.column_names)
    columns = [name for name in QUERY_COLUMNS if name in names]
    if is_arrow(batch):
        rows: list[dict[str, Any]] = batch.select(columns).to_pylist()
        return [{name: plain(value) for name, value in row.items()} for row in rows]
    import pandas as pd

    # pandas shows a missing cell as NaN or NA (a row without an instruction, say): None.
    rows = batch[columns].to_dict("records")
    return [
        {name: None if is_missing(value, pd.NA) else plain(value) for name, value in row.items()}
        for row in rows
    ]


def is_missing(value: Any, na: Any) -> bool:
    import math

    return value is na or (isinstance(value, float) and math.isnan(value))


def with_columns(batch: Any, rows: list[dict[str, Any]], added: dict[str, Any]) -> Any:
    """The batch as an Arrow table (Ray's own conversion of its columns), with the ``added``
    arrays (replacing any columns of those names)."""
    if not is_arrow(batch):
        from ray.data.block import BlockAccessor

        batch = dict(batch) if isinstance(batch, Mapping) else batch.copy()  # or pandas
        if "documents" in batch:
            # Ray hands list columns over as arrays of arrays, which it cannot turn back into
            # Arrow (it would pickle them); the same values as lists, it can.
            batch["documents"] = [row.get("documents") for row in rows]
        batch = BlockAccessor.for_block(BlockAccessor.batch_to_block(batch)).to_arrow()
    table = batch.drop_columns([name for name in added if name in batch.column_names])
    for name, values in added.items():
        table = table.append_column(name, values)
    return table


def result_arrays(
    results: list[list[dict[str, Any]] | None],
    errors: list[dict[str, Any] | None],
    with_ids: bool,
    with_text: bool,
) -> dict[str, Any]:
    """``results`` and ``error`` as Arrow arrays of one type whatever the batch holds — a
    batch whose queries all failed, or none did, has the types of any other — so that the
    dataset has one schema (Parquet needs one). A result's ``id`` (with ``id_field``) has the
    type of the batch's ids; strings when the batch has none."""
    import pyarrow as pa

    fields = [("rank", pa.int64()), ("index", pa.int64()), ("score", pa.float64())]
    if with_ids:
        ids = [r["id"] for ranked in results if ranked for r in ranked if r.get("id") is not None]
        fields.append(("id", pa.array(ids).type if ids else pa.string()))
    if with_text:
        fields.append(("text", pa.string()))
    return {
        "results": pa.array(results, type=pa.list_(pa.struct(fields))),
        "error": pa.array(errors, type=error_type()),
    }


def error_type() -> Any:
    """The ``error`` column's type: batch's ``{"code", "status"?, "message"}``."""
    import pyarrow as pa

    return pa.struct([("code", pa.int64()), ("status", pa.int64()), ("message", pa.string())])


def is_arrow(batch: Any) -> bool:
    import pyarrow as pa

    return isinstance(batch, pa.Table)


def plain(value: Any) -> Any:
    """numpy and pandas values as Python's own: arrays as lists, numpy scalars as numbers,
    str subclasses as str — so that a row reads as its JSON line would."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    tolist = getattr(value, "tolist", None)  # numpy arrays and scalars
    if callable(tolist):
        return plain(tolist())
    if isinstance(value, float):
        return float(value)
    return value
