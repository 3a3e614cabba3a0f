"""Optional integrations with other tools, each behind an extra of its own:
``rerank_cli.integrations.ray`` (``pip install 'rerank-cli[ray]'``) and
``rerank_cli.integrations.mcp_server`` (``pip install 'rerank-cli[mcp]'``).

Kept light: importing this package imports nothing; each integration imports its tool when
it is imported itself."""
