"""The hosted-API engine: batching, the HTTP client with retries, and the wire protocol."""
