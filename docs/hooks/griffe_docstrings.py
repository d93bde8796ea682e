"""Griffe extension for the API reference: the package's docstrings use two reStructuredText forms that Markdown
does not know, and this turns them into Markdown before mkdocstrings renders them.

* Sphinx roles (``:class:`~maml_rl.episodes.Episodes```, ``:func:`train```, ``:mod:`.task```) become
  cross-references: the target is resolved in the docstring's own scope (as Sphinx would), and a link is made
  where the API reference renders the target; elsewhere the name stays as code (an *optional* reference, so an
  undocumented target is not an error).
* Simple tables (columns under ``=====  =====`` borders, a blank first column continuing the row above) become
  Markdown tables, e.g. the shape table of :mod:`maml_rl.episodes`.
* An ``Args:`` entry that documents several parameters at once (``sampler, policy, learner: ...``) becomes one
  entry per parameter with the same text, as the Google style that griffe reads expects.

Loaded by mkdocstrings-python (``extensions:`` in ``mkdocs.yml``); the source files are not changed.
"""

from __future__ import annotations

import html
import re

import griffe

ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|exc|obj|const):`(?P<target>[^`]+)`")
BORDER = re.compile(r"^(?P<indent>\s*)=+(?:\s+=+)+\s*$")
ARGS = re.compile(r"^(?P<indent>\s*)(?:Args|Arguments|Parameters|Params|Attributes):\s*$")
SHARED = re.compile(
    r"^(?P<indent>\s+)(?P<names>\*{0,2}\w+(?:\s*,\s*\*{0,2}\w+)+)(?P<rest>\s*(?:\([^)]*\))?:(?:\s.*)?)$"
)


class SphinxToMarkdown(griffe.Extension):
    """Rewrites every docstring of the loaded package once it is loaded (so names resolve across modules)."""

    def on_package(self, *, pkg: griffe.Module, **kwargs) -> None:
        for obj in _objects(pkg):
            if obj.docstring is not None:
                obj.docstring.value = split_shared_entries(rst_tables(roles(obj.docstring.value, obj)))


def _objects(obj: griffe.Object):
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _objects(member)


def roles(text: str, scope: griffe.Object) -> str:
    """``:role:`target``` → an optional cross-reference to the resolved target, shown as code."""

    def replace(match: re.Match) -> str:
        target = match["target"].strip()
        short = target.startswith("~")
        target = target.lstrip("~")
        title = target.rsplit(".", 1)[-1] if short else target.lstrip(".")
        identifier = resolve(target, scope)
        return f'<autoref identifier="{html.escape(identifier)}" optional><code>{html.escape(title)}</code></autoref>'

    return ROLE.sub(replace, text)


def resolve(target: str, scope: griffe.Object) -> str:
    """The full path of ``target`` as seen from ``scope``: absolute, relative to the package (``.task``), or a
    name in the scope of the docstring's object (its module's imports and members, its class's members)."""
    if target.startswith("maml_rl"):
        return target
    module = scope if scope.is_module else scope.module
    if target.startswith("."):
        package = module.path if module.is_package else module.path.rpartition(".")[0]
        return f"{package}{target}"
    head, _, rest = target.partition(".")
    try:
        found = scope.resolve(head)
    except Exception:  # noqa: BLE001 - griffe's NameResolutionError, or an alias it cannot follow
        return target
    return f"{found}.{rest}" if rest else found


def rst_tables(text: str) -> str:
    """Each reStructuredText simple table in ``text`` → a Markdown table (cells joined across continuation rows)."""
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        match = BORDER.match(lines[i])
        if match is None:
            out.append(lines[i])
            i += 1
            continue
        columns = [(m.start(), m.end()) for m in re.finditer(r"=+", lines[i])]
        borders, rows, j = 1, [], i + 1
        while j < len(lines) and borders < 3:
            if BORDER.match(lines[j]):
                borders += 1
            elif lines[j].strip():
                cells = _cells(lines[j], columns)
                if rows and not cells[0] and borders > 1:
                    rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], cells)]
                else:
                    rows.append(cells)
            j += 1
        if borders < 3 or len(rows) < 2:  # not a complete table: leave the text as it is
            out.append(lines[i])
            i += 1
            continue
        indent = match["indent"]
        out.append("")
        out.append(indent + "| " + " | ".join(rows[0]) + " |")
        out.append(indent + "|" + "---|" * len(columns))
        out.extend(indent + "| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows[1:])
        out.append("")
        i = j
    return "\n".join(out)


def _cells(line: str, columns: list[tuple[int, int]]) -> list[str]:
    cells = []
    for k, (start, _) in enumerate(columns):
        stop = columns[k + 1][0] if k + 1 < len(columns) else len(line)
        cells.append(line[start:stop].strip())
    return cells


def split_shared_entries(text: str) -> str:
    """``a, b: text`` in an ``Args:`` section → ``a: text`` and ``b: text`` (continuation lines copied too)."""
    lines = text.splitlines()
    out: list[str] = []
    section: int | None = None  # the indentation of the current Args: heading
    i = 0
    while i < len(lines):
        line = lines[i]
        indent = len(line) - len(line.lstrip())
        heading = ARGS.match(line)
        if heading:
            section = len(heading["indent"])
        elif line.strip() and section is not None and indent <= section:
            section = None
        shared = SHARED.match(line) if section is not None else None
        if shared is None:
            out.append(line)
            i += 1
            continue
        j = i + 1  # the entry's continuation lines: indented deeper than the entry
        while j < len(lines) and (not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > indent):
            j += 1
        while j > i + 1 and not lines[j - 1].strip():
            j -= 1
        for name in re.split(r"\s*,\s*", shared["names"]):
            out.append(f"{shared['indent']}{name}{shared['rest']}")
            out.extend(lines[i + 1 : j])
        i = j
    return "\n".join(out)
