#!/usr/bin/env bash
# The main job on a fresh machine: rank the bundled sample. Uses the hosted API when GR_KEY is
# set, the offline lexical engine otherwise, and says which on stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
query="how are failed requests retried?"
if [ -n "${GR_KEY:-}" ]; then
  echo "demo: ranking with the hosted API (${RERANK_BASE_URL:-https://gigarouter.ai/v1})" >&2
  engine=api
else
  echo "demo: GR_KEY is not set — ranking offline with --engine lexical" >&2
  engine=lexical
fi
echo "demo: rerank \"$query\" -i examples/sample.jsonl --engine $engine -k 5 -o table" >&2
"${RERANK:-.venv/bin/rerank}" "$query" -i examples/sample.jsonl --engine "$engine" -k 5 -o table
