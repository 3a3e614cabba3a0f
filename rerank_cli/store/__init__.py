"""The SQLite score cache, and the engine that answers from it."""
