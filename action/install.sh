#!/usr/bin/env bash
# The GitHub Action's install step (action.yml, step `install`): rerank in a virtual environment
# of its own under $RUNNER_TEMP, so that its dependencies never change the packages of the job's
# Python. Prints `python=PATH` (that environment's interpreter) to $GITHUB_OUTPUT.
#
# Inputs come only from the environment (action.yml's env:), never from ${{ }} in shell code:
#   SETUP_PYTHON   the interpreter actions/setup-python set up (empty: `python` on PATH)
#   INPUT_VERSION  a rerank-cli release to install from PyPI; empty: the action's own checkout
#                  ($GITHUB_ACTION_PATH), so that `uses: …@REF` runs the code at REF
set -euo pipefail

venv="${RUNNER_TEMP:-${TMPDIR:-/tmp}}/rerank-action-venv"
"${SETUP_PYTHON:-python}" -m venv "$venv"
if [ -x "$venv/bin/python" ]; then
    python="$venv/bin/python"
else
    python="$venv/Scripts/python.exe" # Windows
fi

version="${INPUT_VERSION:-}"
version="${version#v}" # v0.9.0 and 0.9.0 alike
if [ -n "$version" ]; then
    spec="rerank-cli==$version"
else
    spec="${GITHUB_ACTION_PATH:?GITHUB_ACTION_PATH is not set}"
fi
echo "installing $spec into $venv"
"$python" -m pip install --quiet --disable-pip-version-check "$spec"
"$python" -m rerank_cli --version
echo "python=$python" >>"${GITHUB_OUTPUT:?GITHUB_OUTPUT is not set}"
