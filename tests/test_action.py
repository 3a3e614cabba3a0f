"""The GitHub Action (action.yml), run here as the runner runs a composite action.

action.yml is read with a real YAML parser; its steps run in order with a simulated ``GITHUB_*``
environment (``GITHUB_STEP_SUMMARY``, ``GITHUB_OUTPUT``, ``GITHUB_ACTION_PATH``,
``GITHUB_WORKSPACE``, ``RUNNER_TEMP`` in tmp_path) against the loopback server. ``uses:`` steps
(actions/setup-python) are not run, and neither is the install step: rerank is already installed
in the venv the tests run in, which goes first on PATH and is given as the install step's output
(its own test, below, runs it with a stand-in Python). Each ``run:`` runs as ``shell: bash``
does (``bash --noprofile --norc -eo pipefail FILE``) after its ``env:`` is evaluated; the
expressions the action may use there are ``${{ inputs.X }}`` (defaults from action.yml),
``${{ github.action_path }}`` and ``${{ steps.ID.outputs.Y }}`` — any other is a test failure.
Then the summary, the outputs (``GITHUB_OUTPUT`` read as the runner reads it, ``name<<DELIM``
blocks included) and the step's exit status are checked.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import TEST_KEY
from tests.server import RerankServer

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent  # the test venv, where rerank is installed
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
REJECTED_KEY = "gr-rejected-5a4b3c2d1e0f-NOT-THE-KEY"


def load_module() -> ModuleType:
    """action/rerank_action.py, imported from its file (it is no module of the package)."""
    spec = importlib.util.spec_from_file_location(
        "rerank_action", ROOT / "action" / "rerank_action.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["rerank_action"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


action_script = load_module()


# -- the runner, in miniature -------------------------------------------------------------------


def parse_output_file(text: str) -> dict[str, str]:
    """``$GITHUB_OUTPUT`` as the runner reads it: ``name=value`` lines, and ``name<<DELIMITER``
    blocks up to a line that is exactly DELIMITER (lines end at \\n, \\r\\n or \\r)."""
    lines = re.split(r"\r\n|\r|\n", text)
    values: dict[str, str] = {}
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line:
            continue
        equals, heredoc = line.find("="), line.find("<<")
        if equals >= 0 and (heredoc < 0 or equals < heredoc):
            name, value = line.split("=", 1)
            values[name] = value
            continue
        assert heredoc > 0, f"not an output line: {line!r}"
        name, delimiter = line.split("<<", 1)
        block: list[str] = []
        while lines[index] != delimiter:  # IndexError: a block that never ends
            block.append(lines[index])
            index += 1
        index += 1
        values[name] = "\n".join(block)
    return values


@dataclass
class ActionRun:
    status: int  # the exit status of the step that failed, else 0
    outputs: dict[str, str]  # the action's outputs (action.yml `outputs:` evaluated)
    summary: str
    log: str  # every step's stdout and stderr
    output_files: str  # what the steps wrote to GITHUB_OUTPUT, raw
    uses: dict[str, dict[str, str]] = field(default_factory=dict)  # uses: step id → with:


@dataclass
class Action:
    """The action checked out in ``path`` (a copy: it must not need the repository around it),
    run in ``workspace`` with ``env`` on top of the test process's environment."""

    path: Path
    workspace: Path
    temp: Path
    env: dict[str, str]

    def spec(self) -> dict[str, Any]:
        loaded = yaml.safe_load((self.path / "action.yml").read_text(encoding="utf-8"))
        assert isinstance(loaded, dict)
        return loaded

    def run(
        self,
        env: Mapping[str, str] | None = None,
        *,
        simulated: Mapping[str, Mapping[str, str]] | None = None,
        only: set[str] | None = None,
        **inputs: str,
    ) -> ActionRun:
        """Run the steps with ``inputs`` (``min_score`` for ``min-score``). ``simulated`` gives
        the outputs of steps that are not run (by id); ``only`` runs just those step ids."""
        spec = self.spec()
        declared: dict[str, Any] = spec["inputs"]
        given_inputs = {name.replace("_", "-"): value for name, value in inputs.items()}
        unknown = set(given_inputs) - set(declared)
        assert not unknown, f"inputs not in action.yml: {unknown}"
        values = {name: str(d.get("default", "")) for name, d in declared.items()}
        values.update(given_inputs)
        steps: dict[str, dict[str, str]] = {
            "install": {"python": sys.executable},  # what the install step gives (not run)
            **{name: dict(outputs) for name, outputs in (simulated or {}).items()},
        }

        def evaluate(text: object) -> str:
            def one(match: re.Match[str]) -> str:
                expression = match.group(1)
                parts = expression.split(".")
                if len(parts) == 2 and parts[0] == "inputs":
                    return values[parts[1]]  # KeyError: an input action.yml does not declare
                if expression == "github.action_path":
                    return str(self.path)
                if len(parts) == 4 and parts[0] == "steps" and parts[2] == "outputs":
                    return steps.get(parts[1], {}).get(parts[3], "")
                raise AssertionError(f"an expression this test cannot evaluate: {expression}")

            return EXPRESSION.sub(one, str(text))

        base = {
            **os.environ,
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "GITHUB_ACTIONS": "true",
            "CI": "true",
            "GITHUB_ACTION_PATH": str(self.path),
            "GITHUB_WORKSPACE": str(self.workspace),
            "RUNNER_TEMP": str(self.temp),
            **self.env,
            **(env or {}),
        }
        status, summary, log, output_files = 0, [], [], []
        uses: dict[str, dict[str, str]] = {}
        for number, step in enumerate(spec["runs"]["steps"]):
            assert "if" not in step, "step conditions are not simulated here"
            step_id = step.get("id", f"step{number}")
            step_env = {name: evaluate(value) for name, value in (step.get("env") or {}).items()}
            if "uses" in step:
                uses[step_id] = {k: evaluate(v) for k, v in (step.get("with") or {}).items()}
                continue
            if (only is None and step_id == "install") or (
                only is not None and step_id not in only
            ):
                continue
            assert step.get("shell") == "bash", f"step {step_id}: shell must be bash"
            script = self.temp / f"{step_id}.sh"
            script.write_text(step["run"], encoding="utf-8")
            output_file, summary_file = self.temp / f"{step_id}.out", self.temp / f"{step_id}.md"
            output_file.write_text("")
            summary_file.write_text("")
            done = subprocess.run(
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
                cwd=self.workspace,
                env={
                    **base,
                    **step_env,
                    "GITHUB_OUTPUT": str(output_file),
                    "GITHUB_STEP_SUMMARY": str(summary_file),
                },
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                check=False,
                timeout=300,  # a hang fails the test; no assertion on time
            )
            log += [done.stdout, done.stderr]
            raw = output_file.read_text(encoding="utf-8")
            output_files.append(raw)
            steps[step_id] = parse_output_file(raw)
            summary.append(summary_file.read_text(encoding="utf-8"))
            if done.returncode != 0:
                status = done.returncode
                break
        outputs = {name: evaluate(o["value"]) for name, o in spec.get("outputs", {}).items()}
        return ActionRun(
            status, outputs, "".join(summary), "".join(log), "".join(output_files), uses
        )


@pytest.fixture
def action(tmp_path: Path, server: RerankServer) -> Action:
    checkout = tmp_path / "actions" / "rerank"
    checkout.mkdir(parents=True)
    shutil.copy(ROOT / "action.yml", checkout / "action.yml")
    shutil.copytree(
        ROOT / "action", checkout / "action", ignore=shutil.ignore_patterns("__pycache__")
    )
    workspace = tmp_path / "workspace"
    temp = tmp_path / "runner-temp"
    workspace.mkdir()
    temp.mkdir()
    env = {
        "GR_KEY": TEST_KEY,
        "RERANK_BASE_URL": server.base_url,
        "RERANK_CACHE_DIR": str(tmp_path / "cache"),
        "RERANK_CONFIG_DIR": str(tmp_path / "config"),
    }
    return Action(checkout, workspace, temp, env)


def write(root: Path, files: Mapping[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


DOCS = {
    "docs/a.txt": "Paris is the capital of France.\nBananas are yellow.\n",
    "docs/b.txt": "The capital of Spain is Madrid.\nFrance borders Spain.\n",
    "notes/c.md": "France, capital: Paris (not matched by docs/*.txt)\n",
}


@pytest.fixture
def docs(action: Action) -> Action:
    write(action.workspace, DOCS)
    return action


def leaks(run: ActionRun, secret: str) -> list[str]:
    """Where ``secret`` shows: summary, outputs, the log or the results file."""
    places = {"summary": run.summary, "outputs": run.output_files, "log": run.log}
    results = run.outputs.get("results-file")
    if results and Path(results).is_file():
        places["results file"] = Path(results).read_text(encoding="utf-8")
    return [name for name, text in places.items() if secret in text]


# -- rank ---------------------------------------------------------------------------------------


def test_rank_over_a_glob_writes_the_top_results_and_outputs(
    docs: Action, server: RerankServer
) -> None:
    run = docs.run(query="capital of France", input="docs/*.txt", top_k="2")

    assert run.status == 0, run.log
    assert run.outputs["top"] == "Paris is the capital of France."
    assert run.outputs["count"] == "2"
    assert run.outputs["ndcg"] == ""
    assert run.outputs["exit-code"] == "0"
    assert server.billed_documents == 4  # both files of the glob, not notes/c.md
    assert "### rerank rank" in run.summary
    assert "**Query:** capital of France" in run.summary
    rows = [line for line in run.summary.splitlines() if line.startswith("| ")]
    assert rows[0] == "| # | score | document | source |"
    assert rows[1].startswith("| 1 | 0.99") and "Paris is the capital of France." in rows[1]
    assert rows[1].endswith("| docs/a.txt:1 |")
    assert rows[2].startswith("| 2 | 0.66") and rows[2].endswith("| docs/b.txt:1 |")
    assert len(rows) == 3
    lines = Path(run.outputs["results-file"]).read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["rank"] for line in lines] == [1, 2]
    assert "Failed" not in run.summary
    assert leaks(run, TEST_KEY) == []


@pytest.mark.parametrize(
    ("min_score", "status", "count", "verdict"),
    [("0.5", 0, "2", "Gate passed: 2 scored at least min-score 0.5."), ("0.999", 1, "0", None)],
)
def test_min_score_is_a_gate_that_fails_the_step(
    docs: Action, min_score: str, status: int, count: str, verdict: str | None
) -> None:
    run = docs.run(query="capital of France", input="docs/a.txt\ndocs/b.txt", min_score=min_score)

    assert run.status == status, run.log
    assert run.outputs["exit-code"] == str(status)
    assert run.outputs["count"] == count
    if verdict:
        assert verdict in run.summary
        assert run.outputs["top"] == "Paris is the capital of France."
    else:
        assert "**Gate failed**: nothing scored at least min-score 0.999." in run.summary
        assert "**Failed: exit 1** (nothing to show, or a gate failed)." in run.summary
        assert "no results left after --top-k/--min-score" in run.summary  # rerank's message
        assert run.outputs["top"] == ""
        assert "::error title=rerank::exit 1" in run.log


def test_a_document_on_several_lines_is_a_multiline_output(docs: Action) -> None:
    write(docs.workspace, {"para.txt": "Paris is the capital\nof France.\n\nBananas are yellow.\n"})

    run = docs.run(query="capital of France", input="para.txt", args="-F paragraphs")

    assert run.status == 0, run.log
    assert run.outputs["top"] == "Paris is the capital\nof France."
    assert re.search(r"^top<<ghadelimiter_[0-9a-f-]+$", run.output_files, re.MULTILINE)
    assert "| Paris is the capital of France. |" in run.summary  # one line in the table


def test_args_are_split_like_words_and_passed_on(docs: Action, server: RerankServer) -> None:
    run = docs.run(
        {"RERANK_BASE_URL": ""},
        query="capital of France",
        input="docs/a.txt",
        args=f"--base-url '{server.base_url}' -F lines",
    )

    assert run.status == 0, run.log
    assert run.outputs["count"] == "2"
    assert len(server.rerank_requests) == 1


def test_a_file_named_like_a_glob_is_that_file_and_short_flag_clusters_pass(
    docs: Action, server: RerankServer
) -> None:
    write(docs.workspace, {"docs/data[1].txt": "Paris is the capital of France.\n"})
    run = docs.run(query="capital of France", input="docs/data[1].txt", args="-vk1")

    assert run.status == 0, run.log
    assert run.outputs["count"] == "1"
    [request] = server.rerank_requests
    assert request.documents == ["Paris is the capital of France."]


def test_inputs_are_data_never_shell_code(docs: Action, server: RerankServer) -> None:
    query = 'capital $(touch pwned1) `touch pwned2` "; touch pwned3; echo " \' && touch pwned4'

    document = "`touch pwned5` $(touch pwned6)"

    run = docs.run(query=query, input="docs/a.txt", args=f"-F lines '{document}'")

    assert run.status == 0, run.log
    assert not list(docs.workspace.glob("pwned*")) and not list(Path.cwd().glob("pwned*"))
    [request] = server.rerank_requests
    assert request.body["query"] == query
    assert document in request.documents  # a word of args that is no option: a document
    assert cell_text(query) in run.summary


def cell_text(text: str) -> str:
    return str(action_script.cell(text, 1000))


def test_a_query_starting_with_a_dash_is_a_query(docs: Action, server: RerankServer) -> None:
    run = docs.run(query="-capital of France", input="docs/a.txt", top_k="1")

    assert run.status == 0, run.log
    assert [request.body["query"] for request in server.rerank_requests] == ["-capital of France"]
    assert run.outputs["top"] == "Paris is the capital of France."


def test_no_run_step_interpolates_an_expression() -> None:
    """${{ }} in `run:` is pasted into the script before bash reads it (script injection):
    inputs go through env: only. And every input reaches a step."""
    spec = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))
    steps = spec["runs"]["steps"]
    for step in steps:
        assert "${{" not in step.get("run", ""), step
    used = {
        match
        for step in steps
        for value in [*(step.get("env") or {}).values(), *(step.get("with") or {}).values()]
        for match in re.findall(r"inputs\.([\w-]+)", str(value))
    }
    assert used == set(spec["inputs"])


# -- files --------------------------------------------------------------------------------------


def test_files_over_paths(action: Action, server: RerankServer) -> None:
    write(
        action.workspace,
        {
            "src/retry.py": "def retry_with_backoff():\n    # retry with exponential backoff\n",
            "src/colors.py": "RED = 1\nGREEN = 2\n",
            "docs/bread.md": "How to bake bread.\n",
            "other/backoff.txt": "retry backoff, but not among the paths\n",
        },
    )

    run = action.run(query="retry backoff", paths="src\ndocs\n")

    assert run.status == 0, run.log
    assert run.outputs["top"] == "src/retry.py"
    assert run.outputs["count"] == "3"
    assert server.billed_documents == 3
    assert "### rerank files" in run.summary
    assert "| # | score | path | lines | best chunk |" in run.summary
    assert "| 1 | " in run.summary and "| src/retry.py | 1–2 |" in run.summary
    assert "other/backoff.txt" not in run.summary


# -- eval ---------------------------------------------------------------------------------------

# q1's one relevant document d1 is ranked second: nDCG@10 = 1 / log2(3) = 0.6309…
QRELS = "q1 0 d1 1\nq1 0 d2 0\n"
RUN = "q1 Q0 d2 1 2.0 bm25\nq1 Q0 d1 2 1.0 bm25\n"


@pytest.mark.parametrize(("min_ndcg", "status"), [("0.6", 0), ("0.7", 1)])
def test_eval_gate_on_min_ndcg(
    action: Action, server: RerankServer, min_ndcg: str, status: int
) -> None:
    write(action.workspace, {"judged/qrels.txt": QRELS, "run.trec": RUN})

    run = action.run(qrels="judged/qrels.txt", run="run.trec", min_ndcg=min_ndcg)

    assert run.status == status, run.log
    assert float(run.outputs["ndcg"]) == pytest.approx(0.6309297535714575)
    assert run.outputs["count"] == "1"
    assert run.outputs["top"] == ""
    assert run.outputs["exit-code"] == str(status)
    assert "### rerank eval" in run.summary
    assert "| metric | @10 |" in run.summary
    assert "| nDCG | 0.6309 |" in run.summary
    assert "| MRR | 0.5000 |" in run.summary
    if status == 0:
        assert "Gate passed: ndcg@10 0.6309 ≥ min-ndcg 0.6." in run.summary
        assert "Failed" not in run.summary
    else:
        assert "**Gate failed**: ndcg@10 0.6309 is below min-ndcg 0.7." in run.summary
        assert "**Failed: exit 1**" in run.summary
    assert server.requests == []  # judging a run needs no API


# -- failures -----------------------------------------------------------------------------------


def test_a_rejected_key_is_exit_3_and_never_shown(docs: Action, server: RerankServer) -> None:
    run = docs.run({"GR_KEY": REJECTED_KEY}, query="capital of France", input="docs/a.txt")

    assert run.status == 3, run.log
    assert run.outputs["exit-code"] == "3"
    assert run.outputs["count"] == "0"
    assert "**Failed: exit 3** (the API refused)." in run.summary
    assert "was rejected" in run.summary
    assert "::error title=rerank::exit 3 (the API refused)" in run.log
    # It was sent (and refused), yet shows nowhere.
    assert server.rerank_requests[0].headers["authorization"] == f"Bearer {REJECTED_KEY}"
    assert leaks(run, REJECTED_KEY) == []


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"input": "docs/a.txt", "paths": "src"}, "set input (rank documents) or paths"),
        ({"input": "docs/*.pdf"}, "input: 'docs/*.pdf' matches no file"),
        ({"input": "docs/a.txt", "args": "-o table"}, "args: -o is not allowed here"),
        ({"input": "docs/a.txt", "args": "-vq"}, "args: -q is not allowed here"),
        ({"input": "docs/a.txt", "args": "-yvojson"}, "args: -o is not allowed here"),
        ({"input": "docs/a.txt", "args": f"--api-key={TEST_KEY}"}, "pass the key as env GR_KEY"),
        ({"input": "docs/a.txt", "args": f"--api-key '{TEST_KEY}"}, "args: No closing quotation"),
        ({"input": "docs/a.txt", "args": "'unclosed"}, "args: No closing quotation"),
        ({"input": "docs/a.txt", "min_ndcg": "0.5"}, "min-ndcg is a gate of eval"),
        ({"qrels": "q.txt"}, "eval needs both qrels and run"),
        ({"qrels": "q.txt", "run": "r.trec", "top_k": "3"}, "query, top-k: not used by eval"),
    ],
)
def test_unusable_inputs_fail_with_exit_2_before_anything_is_sent(
    docs: Action, server: RerankServer, inputs: dict[str, str], message: str
) -> None:
    run = docs.run(**{"query": "capital of France", **inputs})

    assert run.status == 2, run.log
    assert run.outputs["exit-code"] == "2"
    assert message in run.summary
    assert "**Failed: exit 2** (usage or input error)." in run.summary
    assert "::error title=rerank::exit 2 (usage or input error): rerank action: " in run.log
    assert message in run.log
    assert server.requests == []
    assert leaks(run, TEST_KEY) == []


def test_a_missing_input_file_is_rerank_s_exit_2(docs: Action) -> None:
    run = docs.run(query="capital of France", input="docs/missing.txt")

    assert run.status == 2, run.log
    assert "docs/missing.txt" in run.summary


def test_rerank_s_messages_cannot_issue_workflow_commands(docs: Action) -> None:
    """rerank's stderr reaches the log between ::stop-commands:: and its resume token."""
    run = docs.run(query="capital of France", input="docs/missing.txt")

    tokens = re.findall(r"^::stop-commands::(\w+)$", run.log, re.MULTILINE)
    assert len(tokens) == 1
    guarded = run.log.split(f"::stop-commands::{tokens[0]}\n", 1)[1].split(f"::{tokens[0]}::")[0]
    assert "docs/missing.txt" in guarded


# -- the other steps ----------------------------------------------------------------------------


def test_setup_python_gets_the_python_version_and_leaves_the_job_s_python(
    docs: Action,
) -> None:
    run = docs.run(query="capital of France", input="docs/a.txt", python_version="3.11")

    assert run.uses["setup-python"] == {"python-version": "3.11", "update-environment": "false"}


STUB_PYTHON = """#!/usr/bin/env bash
# A stand-in for Python: `-m venv DIR` makes DIR/bin/python (this script); anything else is
# logged, one line per call.
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then mkdir -p "$3/bin"; cp "$0" "$3/bin/python"; exit 0; fi
printf '%s\\n' "$*" >>"$STUB_LOG"
"""


@pytest.mark.parametrize(
    ("version", "spec"),
    [("", "{action_path}"), ("0.9.1", "rerank-cli==0.9.1"), ("v1.2.0", "rerank-cli==1.2.0")],
)
def test_install_step_installs_the_checkout_or_a_release_into_a_venv(
    action: Action, tmp_path: Path, version: str, spec: str
) -> None:
    stub = tmp_path / "stub" / "python"
    stub.parent.mkdir()
    stub.write_text(STUB_PYTHON)
    stub.chmod(0o755)
    log = tmp_path / "stub.log"

    run = action.run(
        {"STUB_LOG": str(log)},
        simulated={"setup-python": {"python-path": str(stub)}},
        only={"install"},
        version=version,
    )

    assert run.status == 0, run.log
    venv_python = action.temp / "rerank-action-venv" / "bin" / "python"
    assert parse_output_file(run.output_files) == {"python": str(venv_python)}
    expected = spec.format(action_path=action.path)
    assert log.read_text().splitlines() == [
        f"-m pip install --quiet --disable-pip-version-check {expected}",
        "-m rerank_cli --version",
    ]


# -- the summary and outputs, as functions ------------------------------------------------------


@given(st.dictionaries(st.from_regex(r"[a-z][a-z-]{0,10}", fullmatch=True), st.text(), max_size=4))
def test_outputs_read_back_as_written(values: dict[str, str]) -> None:
    expected = {name: re.sub(r"\r\n?", "\n", value) for name, value in values.items()}
    assert parse_output_file(action_script.output_text(values)) == expected


@given(st.text())
def test_a_cell_is_one_line_with_nothing_that_breaks_a_table(text: str) -> None:
    cell = action_script.cell(text, 40)
    bare = re.sub(r"\\.", "", cell)  # what is left once escapes are taken out
    assert "|" not in bare and "<" not in bare and "`" not in bare
    assert not any(c in cell for c in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
    assert len(re.sub(r"&\w+;|\\.", "x", cell)) <= 40


def test_a_pipe_in_a_document_stays_in_its_cell() -> None:
    record = {
        "rank": 1,
        "score": 0.5,
        "index": 0,
        "text": "a | b\nc",
        "source": {"file": "f|g", "line": 2},
    }
    outcome = action_script.Outcome(0, [record], None, [])
    inputs = action_script.Inputs(query="q", input="f|g")
    plan = action_script.Plan("rank", [])

    row = next(
        line
        for line in action_script.summary(plan, inputs, outcome).splitlines()
        if line.startswith("| 1 ")
    )

    assert row == r"| 1 | 0.5000 | a \| b c | f\|g:2 |"
