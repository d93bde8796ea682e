"""mkdocs hook: the configuration page's table of every config key, generated from the typed config at build time.

``docs/configuration.md`` holds the marker ``<!-- config-table -->``; this hook replaces it with a Markdown table
built from :func:`maml_rl.config.config_reference` (key, default, meaning), so the page can never drift from the
code. A configuration page without the marker fails the build, and so does an empty reference.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import yaml

MARKER = "<!-- config-table -->"
PAGE = "configuration.md"


def on_config(config, **kwargs):
    """Makes the repository importable when mkdocs runs without the package installed."""
    root = str(Path(config.config_file_path).resolve().parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    return config


def on_page_markdown(markdown: str, page, config, files, **kwargs) -> str:
    if page.file.src_uri != PAGE:
        return markdown
    if MARKER not in markdown:
        raise ValueError(f"{PAGE}: the marker {MARKER} is missing, so the configuration table cannot be generated")
    return markdown.replace(MARKER, config_table())


def config_table() -> str:
    """Every config key as one row of a Markdown table: key, default (as YAML spells it), allowed values (where
    its check is a range), meaning."""
    from maml_rl.config import config_reference

    rows = config_reference()
    if not rows:
        raise ValueError("maml_rl.config.config_reference() returned no keys")
    lines = ["| key | default | allowed | meaning |", "|---|---|---|---|"]
    for row in rows:
        allowed = cell(row.allowed) if row.allowed else ""
        lines.append(f"| `{row.key}` | `{yaml_default(row.default)}` | {allowed} | {cell(row.doc)} |")
    return "\n".join(lines) + "\n"


def yaml_default(text: str) -> str:
    """A default as YAML writes it: ``true``/``false``/``null`` and ``[observation]`` rather than Python's
    ``True``/``None``/``['observation']``; numbers and strings stay as they are."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
    if isinstance(value, (bool, list, tuple, dict)) or value is None:
        if isinstance(value, tuple):
            value = list(value)
        return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
    return text


def cell(text: str) -> str:
    """Text that stays inside one table cell."""
    return " ".join(text.split()).replace("|", "\\|")
