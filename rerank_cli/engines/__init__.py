"""Engines score (query, text) pairs. The pipeline knows them only through :class:`Engine`."""
