"""Choices shared by several commands."""

from __future__ import annotations

from enum import Enum


class InputFormat(str, Enum):
    auto = "auto"
    lines = "lines"
    jsonl = "jsonl"
    json = "json"


class OutputFormat(str, Enum):
    table = "table"
    jsonl = "jsonl"
    json = "json"
    plain = "plain"
    tsv = "tsv"


class EngineName(str, Enum):
    api = "api"
    lexical = "lexical"


class Color(str, Enum):
    auto = "auto"
    always = "always"
    never = "never"


INPUT = "Input"
API = "API"
OUTPUT = "Output"
