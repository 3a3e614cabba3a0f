"""``rerank_cli.integrations.ray.Rerank``: ``rerank batch`` as a Ray Data ``map_batches``
callable. Its rows rank as the real ``rerank batch`` ranks the same JSON lines, on a local Ray
cluster (one per module, 2 CPUs) against the loopback server; its batch formats and failures are
tested on the callable itself, in this process.

Skipped when Ray is not installed (``pip install -e '.[dev,ray]'``), unless
RERANK_REQUIRE_RAY=1 (CI), which turns the skip into a failure."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from rerank_cli.errors import ApiRefused, InputError, UsageError
from tests.conftest import TEST_KEY, CliResult, RunCli
from tests.server import Fault, RerankServer

try:
    import ray
    import ray.data

    HAVE_RAY = True
except ImportError:  # pragma: no cover - the ray extra installs it
    if os.environ.get("RERANK_REQUIRE_RAY") == "1":
        raise
    HAVE_RAY = False

needs_ray = pytest.mark.skipif(
    not HAVE_RAY,
    reason="Ray is not installed (pip install -e '.[dev,ray]'; CI sets RERANK_REQUIRE_RAY=1)",
)

ROOT = Path(__file__).resolve().parent.parent
# Ray Data's own DataContext warns about its own deprecated settings.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# --- the extra stays optional (these run with or without Ray) -----------------------------------


def test_importing_rerank_cli_never_imports_ray() -> None:
    done = run_python(
        "import sys\n"
        "import rerank_cli, rerank_cli.integrations\n"
        "from rerank_cli import Reranker\n"
        "import rerank_cli.jobs.batch_job\n"
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('ray', 'pyarrow', 'pandas', 'numpy'))))\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


def test_without_ray_the_import_names_the_extra() -> None:
    done = run_python(
        "import sys\n"
        "sys.modules['ray'] = None  # as if Ray were not installed\n"
        "try:\n"
        "    import rerank_cli.integrations.ray\n"
        "except ImportError as error:\n"
        "    print(error)\n"
        "else:\n"
        "    print('imported')\n"
    )
    assert done.returncode == 0, done.stderr
    assert "pip install 'rerank-cli[ray]'" in done.stdout


# --- inputs, and what rerank batch makes of them -----------------------------------------------

# Strings, blank documents (skipped: indexes stay batch's), ties, a query asked twice (scored
# as one plan), a row's own instruction, and a query with no documents left.
STRING_ROWS: list[dict[str, Any]] = [
    {
        "id": "fr",
        "query": "capital of France",
        "documents": ["Paris is the capital of France.", "Bananas are yellow.", "  ", "Lyon"],
    },
    {"id": "fruit", "query": "yellow fruit", "documents": ["Bananas are yellow.", "Paris", "x"]},
    {"id": "fr-again", "query": "capital of France", "documents": ["Lyon", "France capital"]},
    {
        "id": "told",
        "query": "capital of France",
        "documents": ["Paris is the capital of France.", "France"],
        "instruction": "Find the city",
    },
    {"id": "blank", "query": "anything", "documents": ["   "]},
    *(
        {
            "id": f"q{n}",
            "query": f"question number {n}",
            "documents": [f"answer {n}.{d} to question {n}" for d in range(4)] + ["question"],
        }
        for n in range(7)
    ),
]

# Objects: the text at --field, the id at --id-field (every document has one: Arrow gives each
# struct of a column the same fields, null where a document lacks one).
OBJECT_ROWS: list[dict[str, Any]] = [
    {
        "id": n,
        "query": f"topic {n} and more",
        "documents": [
            {"docid": f"d{n}.{d}", "body": f"text {d} on topic {n}" + " more" * (d % 3)}
            for d in range(5)
        ],
    }
    for n in range(6)
]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> str:
    path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    return str(path)


def batch_results(result: CliResult, exit_code: int = 0) -> dict[Any, Any]:
    """What ``rerank batch`` wrote: id → its ``results`` (or its ``error``)."""
    assert result.exit_code == exit_code, result.stderr
    return {record["id"]: record.get("results", record.get("error")) for record in result.records()}


def plain(value: Any) -> Any:
    """A row as Ray hands it back (numpy arrays, numpy scalars) as JSON values."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if hasattr(value, "tolist"):
        return plain(value.tolist())
    return value


def ray_results(rows: list[dict[str, Any]]) -> dict[Any, Any]:
    """id → ``results`` (or ``error``) of rows that came out of :class:`Rerank`."""
    found = {}
    for row in map(plain, rows):
        assert ("results" in row) and ("error" in row)
        assert (row["results"] is None) != (row["error"] is None), row
        found[row["id"]] = row["results"] if row["error"] is None else row["error"]
    return found


# --- the callable itself, in this process --------------------------------------------------------


@pytest.fixture
def worker_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """What a Ray worker's environment would hold: the key, and no user config, and a cache
    of its own (not the one the CLI runs of a test fill)."""
    monkeypatch.setenv("GR_KEY", TEST_KEY)
    monkeypatch.setenv("RERANK_CONFIG_DIR", str(tmp_path / "worker-config"))
    monkeypatch.setenv("RERANK_CACHE_DIR", str(tmp_path / "worker-cache"))


@pytest.fixture
def rerank_module(worker_env: None) -> Any:
    if not HAVE_RAY:
        pytest.skip("Ray is not installed (pip install -e '.[dev,ray]')")
    from rerank_cli.integrations import ray as integration

    return integration


def as_batch(rows: list[dict[str, Any]], batch_format: str) -> Any:
    """``rows`` as Ray Data hands a batch to map_batches in ``batch_format``."""
    import pyarrow as pa

    names = list(dict.fromkeys(name for row in rows for name in row))  # not the first row's
    table = pa.Table.from_pydict({name: [row.get(name) for row in rows] for name in names})
    if batch_format == "pyarrow":
        return table
    if batch_format == "pandas":
        return table.to_pandas()
    return {name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names}


def batch_rows(batch: Any) -> list[dict[str, Any]]:
    """A batch map_batches returned, as rows."""
    if isinstance(batch, dict):
        size = len(next(iter(batch.values())))
        return [{name: column[i] for name, column in batch.items()} for i in range(size)]
    if hasattr(batch, "to_pylist"):
        return list(batch.to_pylist())
    return list(batch.to_dict("records"))


@needs_ray
@pytest.mark.parametrize("batch_format", ["pyarrow", "pandas", "numpy"])
@pytest.mark.parametrize(
    ("rows", "options", "kwargs"),
    [
        (STRING_ROWS, ["-k", "3"], {"top_k": 3}),
        (STRING_ROWS, ["--min-score", "0.3", "--no-text"], {"min_score": 0.3, "no_text": True}),
        (
            OBJECT_ROWS,
            ["--field", "body", "--id-field", "docid", "-k", "4"],
            {"field": "body", "id_field": "docid", "top_k": 4},
        ),
    ],
    ids=["strings-top-k", "min-score-no-text", "objects-field-id-field"],
)
def test_rows_rank_as_rerank_batch_ranks_their_lines(
    rerank_module: Any,
    api_cli: RunCli,
    server: RerankServer,
    tmp_path: Path,
    batch_format: str,
    rows: list[dict[str, Any]],
    options: list[str],
    kwargs: dict[str, Any],
) -> None:
    expected = batch_results(api_cli("batch", write_jsonl(tmp_path / "q.jsonl", rows), *options))
    rerank = rerank_module.Rerank(base_url=server.base_url, **kwargs)
    try:
        out = batch_rows(rerank(as_batch(rows, batch_format)))
    finally:
        rerank.close()
    assert [plain(row["id"]) for row in out] == [row["id"] for row in rows]  # in order
    got = ray_results(out)
    assert got == expected
    assert any(got.values())
    for row, before in zip(out, rows, strict=True):  # the row's own columns pass through
        assert plain(row["query"]) == before["query"]
        assert plain(row["documents"]) == before["documents"]


@needs_ray
def test_a_failed_query_gets_batchs_error_and_the_others_go_on(
    rerank_module: Any, api_cli: RunCli, server: RerankServer, tmp_path: Path
) -> None:
    rows = STRING_ROWS[:2]
    server.add_faults(Fault.error(400, "model is unavailable for this query"))
    refused = api_cli("batch", write_jsonl(tmp_path / "q.jsonl", rows[:1]), "-k", "2")
    expected = batch_results(refused, exit_code=3)
    assert expected["fr"]["code"] == 3
    rerank = rerank_module.Rerank(base_url=server.base_url, top_k=2)
    try:
        server.add_faults(Fault.error(400, "model is unavailable for this query"))
        got = ray_results(batch_rows(rerank(as_batch(rows, "pyarrow"))))
        assert sorted(value is None or "code" in value for value in got.values()) == [False, True]
        failed = next(key for key, value in got.items() if "code" in value)
        assert got[failed] == expected["fr"]  # the error batch writes
        server.add_faults(Fault.error(400, "model is unavailable for this query"))
        fail_fast = rerank_module.Rerank(base_url=server.base_url, fail_fast=True)
        with pytest.raises(ApiRefused, match="model is unavailable"):
            fail_fast(as_batch(rows, "pyarrow"))
        fail_fast.close()
    finally:
        rerank.close()


@needs_ray
def test_every_batch_has_the_same_columns_whatever_failed(
    rerank_module: Any, server: RerankServer
) -> None:
    rows = [
        {"id": n, "query": "capital", "documents": [{"docid": "a", "text": "t"}]} for n in (1, 2)
    ]
    rerank = rerank_module.Rerank(base_url=server.base_url, id_field="docid", no_cache=True)
    try:
        ranked = rerank(as_batch(rows[:1], "numpy"))
        server.add_faults(Fault.error(400, "no"))
        failed = rerank(as_batch(rows[1:], "numpy"))
    finally:
        rerank.close()
    assert ranked.column("error").to_pylist() == [None]
    assert failed.column("results").to_pylist() == [None]
    assert ranked.schema == failed.schema  # one schema: Parquet can hold both


@needs_ray
def test_a_rejected_key_stops_the_task(
    rerank_module: Any, server: RerankServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GR_KEY", "gr-another-key")
    rerank = rerank_module.Rerank(base_url=server.base_url)
    try:
        with pytest.raises(ApiRefused, match="rejected") as raised:
            rerank(as_batch(STRING_ROWS, "pyarrow"))
        assert raised.value.status == 401
    finally:
        rerank.close()


@needs_ray
@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"id": "x", "query": "q"}, 'row with id "x": no documents'),
        ({"id": "x", "query": "  ", "documents": ["a"]}, 'row with id "x": the query is blank'),
        ({"query": "q", "documents": "a"}, "row 1 of a batch: documents must be a list"),
        ({"id": "x", "query": "q", "documents": [{"title": "t"}]}, "no text field"),
    ],
)
def test_an_invalid_row_fails_its_batch_before_anything_is_sent(
    rerank_module: Any, server: RerankServer, row: dict[str, Any], message: str
) -> None:
    rerank = rerank_module.Rerank(base_url=server.base_url)
    try:
        with pytest.raises(InputError, match=message):
            rerank({name: [value] for name, value in row.items()})
    finally:
        rerank.close()
    assert server.rerank_requests == []


@needs_ray
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"top_k": 0}, "top_k must be a whole number"),
        ({"min_score": "high"}, "min_score must be a finite number"),
        ({"batch_sise": 3}, "batch_sise"),  # settings are checked as Reranker checks them
    ],
)
def test_options_are_checked_when_the_actor_starts(
    rerank_module: Any, server: RerankServer, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        rerank_module.Rerank(base_url=server.base_url, **kwargs)


@needs_ray
def test_a_batchs_queries_are_ranked_concurrently_within_j(
    rerank_module: Any, server: RerankServer
) -> None:
    rows = STRING_ROWS[5:11]  # six distinct queries
    server.hold_until_in_flight(3, timeout=10)  # one at a time: each would wait the timeout
    rerank = rerank_module.Rerank(base_url=server.base_url, concurrency=3, no_cache=True)
    try:
        got = ray_results(batch_rows(rerank(as_batch(rows, "pyarrow"))))
    finally:
        rerank.close()
    assert all(isinstance(value, list) and value for value in got.values())
    assert server.max_in_flight == 3  # all the -j allows, and no more


# --- on a local Ray cluster ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A local Ray cluster for the module; its workers see the test key and a cache and config
    of their own (as a node's environment would give them)."""
    if not HAVE_RAY:
        pytest.skip("Ray is not installed (pip install -e '.[dev,ray]')")
    home = tmp_path_factory.mktemp("ray-node")
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        logging_level=logging.WARNING,
        runtime_env={
            "env_vars": {
                "GR_KEY": TEST_KEY,
                "RERANK_CONFIG_DIR": str(home / "config"),
                "RERANK_CACHE_DIR": str(home / "cache"),
            }
        },
    )
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    try:
        yield
    finally:
        ray.shutdown()


@needs_ray
def test_on_ray_two_actors_rank_as_rerank_batch(
    ray_cluster: None, api_cli: RunCli, server: RerankServer, tmp_path: Path
) -> None:
    from rerank_cli.integrations.ray import Rerank

    given = write_jsonl(tmp_path / "q.jsonl", OBJECT_ROWS)
    # -j 1 here too: the server's peak in flight below must be the actors' alone.
    expected = batch_results(
        api_cli("batch", given, "--field", "body", "--id-field", "docid", "-j", "1")
    )
    assert server.max_in_flight == 1
    # Each actor has -j 1: two requests in flight at once can only be the two actors'.
    server.hold_until_in_flight(2, timeout=10)
    ranked = ray.data.read_json(given).map_batches(
        Rerank,
        fn_constructor_kwargs={
            "base_url": server.base_url,
            "concurrency": 1,
            "no_cache": True,
            "field": "body",
            "id_field": "docid",
        },
        compute=ray.data.ActorPoolStrategy(size=2),
        num_cpus=0.5,  # an actor mostly waits on HTTP; a whole CPU each would starve the read
        batch_size=2,
        batch_format="pyarrow",
    )
    assert ray_results(ranked.take_all()) == expected
    assert server.max_in_flight == 2


@needs_ray
def test_on_ray_a_second_run_is_answered_by_the_nodes_cache(
    ray_cluster: None, api_cli: RunCli, server: RerankServer, tmp_path: Path
) -> None:
    from rerank_cli.integrations.ray import Rerank

    rows = [{**row, "query": f"{row['query']} {tmp_path.name}"} for row in STRING_ROWS]
    given = write_jsonl(tmp_path / "q.jsonl", rows)
    expected = batch_results(api_cli("batch", given, "-k", "2"))
    billed = server.billed_documents

    def run() -> dict[Any, Any]:
        ranked = ray.data.from_items(rows).map_batches(
            Rerank,
            fn_constructor_kwargs={"base_url": server.base_url, "top_k": 2},
            compute=ray.data.ActorPoolStrategy(size=1),
            num_cpus=0.5,
            batch_size=4,
        )
        return ray_results(ranked.take_all())

    assert run() == expected
    assert server.billed_documents > billed  # the CLI's cache is not the workers'
    billed = server.billed_documents
    assert run() == expected
    assert server.billed_documents == billed


@needs_ray
def test_on_ray_a_failed_query_is_a_row_of_the_same_parquet_file(
    ray_cluster: None, api_cli: RunCli, server: RerankServer, tmp_path: Path
) -> None:
    import pyarrow.parquet as pq

    from rerank_cli.integrations.ray import Rerank

    rows = OBJECT_ROWS[:4]
    given = write_jsonl(tmp_path / "q.jsonl", rows)
    expected = batch_results(api_cli("batch", given, "--field", "body", "--id-field", "docid"))
    server.add_faults(Fault.error(400, "model is unavailable for this query"))
    ranked = ray.data.read_json(given).map_batches(
        Rerank,
        fn_constructor_kwargs={
            "base_url": server.base_url,
            "no_cache": True,
            "field": "body",
            "id_field": "docid",
        },
        compute=ray.data.ActorPoolStrategy(size=1),
        num_cpus=0.5,
        batch_size=1,  # the failed query's batch holds no results at all
    )
    ranked.write_parquet(str(tmp_path / "ranked"))
    got = ray_results(pq.read_table(tmp_path / "ranked").to_pylist())
    failed = [key for key, value in got.items() if isinstance(value, dict)]
    assert len(failed) == 1
    assert got[failed[0]] == {
        "code": 3,
        "status": 400,
        "message": "the API refused the request (HTTP 400): model is unavailable for this query",
    }
    assert {key: value for key, value in got.items() if key not in failed} == {
        key: value for key, value in expected.items() if key not in failed
    }
