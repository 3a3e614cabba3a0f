"""What ``rerank config`` does: show, set and unset keys, secrets never printed."""

from __future__ import annotations

from collections.abc import Mapping

from rerank_cli.redact import mask
from rerank_cli.settings import config_file as config
from rerank_cli.settings.schema import SECRET_KEYS, SPECS, convert, unknown


def show(env: Mapping[str, str]) -> str:
    """The file as TOML, secrets masked (``api_key = "gr-…abcd"``)."""
    import tomli_w

    path = config.config_path(env)
    table = config.load(path)
    masked = {
        key: mask(value) if key in SECRET_KEYS and isinstance(value, str) else value
        for key, value in table.items()
    }
    header = f"# {path}" + ("" if path.exists() else " (does not exist yet)")
    return header + "\n" + tomli_w.dumps(masked)


def set_value(env: Mapping[str, str], key: str, value: str) -> str:
    """Check ``value`` as the schema says (``batch_size must be a whole number ≥ 1, got
    'zero'``), then write it typed."""
    spec = SPECS.get(key)
    if spec is None:
        raise unknown(key)
    typed = convert(spec, value, key)
    path = config.config_path(env)
    table = config.load(path)
    table[key] = typed
    config.save(path, table)
    return f"set {key} in {path}"


def unset_value(env: Mapping[str, str], key: str) -> str:
    """Remove ``key``; one that is not set is no error (the file is as asked), but a name that
    is no setting is (``unset bach_size``: did you mean batch_size?)."""
    path = config.config_path(env)
    table = config.load(path)
    if key not in table:
        if key not in SPECS:
            raise unknown(key)
        return f"{key} was not set in {path}: nothing to remove"
    del table[key]
    config.save(path, table)
    return f"removed {key} from {path}"
