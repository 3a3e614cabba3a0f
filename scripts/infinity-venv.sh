#!/usr/bin/env bash
# Build .venv-infinity at the repository root: a real open-source rerank server (infinity-emb) on
# a CPU-only torch, for tests/test_infinity.py. Idempotent: a venv already built from these very
# pins, and that still imports, is left alone (a second run takes ~10 s).
#
#   scripts/infinity-venv.sh            build or check
#   scripts/infinity-venv.sh --force    rebuild from scratch
set -euo pipefail

cd "$(dirname "$0")/.."
VENV=.venv-infinity
PYTHON=${PYTHON:-python3}  # infinity-emb 0.0.78 needs Python >=3.9,<3.14
STAMP=$VENV/.built-with

# torch first, on its own: 2.13.0 is the local CPU wheel (2.13.0+cpu, from pip's find-links on
# these machines). A bare `torch`, or torch==2.13.0 from PyPI proper, is the CUDA build that
# drags in gigabytes of nvidia-* wheels; check_torch_plan below refuses that before installing.
TORCH=torch==2.13.0

# Known-good set, found by pip's resolver on 2026-11 and then frozen, because later releases of
# these have broken infinity-emb before:
# - infinity-emb 0.0.78: the newest; it handles optimum>=2 lacking bettertransformer (optimum is
#   not installed at all: we use the plain torch engine).
# - sentence-transformers 3.x: infinity's [torch] extra caps it <4; its CrossEncoder is the
#   reranker class infinity patches.
# - transformers 4.57.6 / tokenizers 0.22.2 / huggingface-hub 0.36.2: ST 3.x and infinity cap
#   transformers below 5; hub 1.x is refused by transformers 4.x.
# - numpy 1.26.4: infinity requires numpy<2.
# - fastapi 0.165.0 / starlette 1.10.0 / pydantic 2.14.4 / uvicorn 0.32.1: a server stack that
#   serves infinity's routes (it uses ORJSONResponse, deprecated in fastapi and bound to go).
# - click 8.1.8 / typer 0.12.5: infinity's CLI is typer 0.12, which breaks on click>=8.2.
PINS=(
    "infinity-emb[server,torch]==0.0.78"
    "sentence-transformers==3.4.1"
    "transformers==4.57.6"
    "tokenizers==0.22.2"
    "huggingface-hub==0.36.2"
    "numpy==1.26.4"
    "fastapi==0.165.0"
    "starlette==1.10.0"
    "pydantic==2.14.4"
    "uvicorn[standard]==0.32.1"
    "click==8.1.8"
    "typer==0.12.5"
)
WANTED="$TORCH ${PINS[*]}"

# What makes the venv good: the imports the server needs, on a CPU-only torch.
SELF_TEST='
import importlib.metadata as md, sys
import torch, transformers, sentence_transformers, fastapi, uvicorn
import infinity_emb.infinity_server
assert "+cpu" in torch.__version__, "torch is not the CPU build: " + torch.__version__
cuda = [d.metadata["Name"] for d in md.distributions() if d.metadata["Name"].startswith("nvidia")]
assert not cuda, "CUDA wheels installed: " + ", ".join(cuda)
'

pip_() {
    # The local indexes warn on stderr about every package they lack; that is noise here.
    "$VENV/bin/python" -m pip "$@" \
        2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}

check_torch_plan() {
    # Ask pip what it would install for $TORCH, and refuse a CUDA torch before fetching it.
    local report
    report=$(mktemp)
    pip_ install --quiet --dry-run --ignore-installed --report "$report" "$TORCH" >/dev/null
    "$VENV/bin/python" - "$report" <<'EOF'
import json, sys
plan = json.load(open(sys.argv[1]))["install"]
names = {item["metadata"]["name"].lower(): item["metadata"]["version"] for item in plan}
cuda = sorted(name for name in names if name.startswith("nvidia"))
if not names.get("torch", "").endswith("+cpu") or cuda:
    sys.exit(
        f"refusing to install torch {names.get('torch')} (CUDA build; pulls {cuda or 'CUDA'}):"
        " the local CPU wheel torch-2.13.0+cpu is not on pip's find-links here"
    )
EOF
    rm -f "$report"
}

if [[ ${1:-} == --force ]]; then
    rm -rf "$VENV"
fi

if [[ -f $STAMP && $(cat "$STAMP") == "$WANTED" ]] \
    && "$VENV/bin/python" -c "$SELF_TEST" >/dev/null 2>&1; then
    echo "$VENV is up to date"
    exit 0
fi

start=$SECONDS
if ! "$VENV/bin/python" -c "" >/dev/null 2>&1; then
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
fi
rm -f "$STAMP"
check_torch_plan
echo "installing $TORCH (CPU) into $VENV"
pip_ install --quiet "$TORCH"
# The installed torch is held with a constraint, so no later requirement can swap it.
constraint=$(mktemp)
"$VENV/bin/python" -c 'import importlib.metadata as m; print("torch==" + m.version("torch"))' \
    >"$constraint"
echo "installing ${PINS[*]}"
pip_ install --quiet --constraint "$constraint" "${PINS[@]}"
rm -f "$constraint"
"$VENV/bin/python" -c "$SELF_TEST"
echo "$WANTED" >"$STAMP"
echo "$VENV built in $((SECONDS - start)) s"
