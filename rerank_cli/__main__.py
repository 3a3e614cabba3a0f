"""``python -m rerank_cli``."""

from rerank_cli.cli import main

raise SystemExit(main())
