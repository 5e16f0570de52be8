"""YAML suites (the primary format): a mapping with the suite fields and an `items:` list."""

from __future__ import annotations

from pathlib import Path

import yaml

from evals.golden.located import Document, Located, Report, read_text

YAML_SUFFIXES = (".yaml", ".yml")

# A golden set's largest honest node tree (every item, every field) is far below this; aliases
# that expand past it are an alias bomb (632 bytes can expand to gigabytes).
MAX_EXPANDED_NODES = 1_000_000

# libyaml's parser keeps the marks (lines) this package reports, at ~5x the pure-Python speed.
_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _yaml_problem(exc: yaml.YAMLError) -> tuple[int | None, str]:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    message = f"{context}; {problem}" if context else problem
    return (mark.line + 1 if mark is not None else None), message


def _expanded_nodes(root: yaml.Node) -> int:
    """How many nodes the document has once every alias is expanded, counted without expanding.

    The composer shares one node object per anchor, so counting each distinct node once and
    multiplying by its uses costs the size of the file, not of the expansion.
    """
    sizes: dict[int, int] = {}
    pending: list[tuple[yaml.Node, bool]] = [(root, False)]
    while pending:
        node, children_done = pending.pop()
        if id(node) in sizes:
            continue
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        if children_done:
            sizes[id(node)] = 1 + sum(sizes[id(child)] for child in children)
        else:
            pending.append((node, True))
            pending.extend((child, False) for child in children if id(child) not in sizes)
    return sizes[id(root)]


def _yaml_mapping(
    loader: yaml.SafeLoader,
    node: yaml.MappingNode,
    report: Report,
    keep_nodes: tuple[str, ...] = (),
    path: str | None = None,
) -> Located:
    """Turn a mapping node into a Located, reporting non-string and duplicate keys.

    PyYAML keeps the last of two equal keys without a word; in a golden set that hides a typo
    (two `expected_verdict:` lines), so it is an error here.
    """
    loader.flatten_mapping(node)  # honour `<<: *anchor` merges
    located = Located({}, node.start_mark.line + 1)
    for key_node, value_node in node.value:
        key_line = key_node.start_mark.line + 1
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            report(key_line, None, str(key), "field names must be strings", path)
            continue
        if key in located.data:
            located.duplicates.append((key, key_line))  # reported with the item's id
            continue
        located.key_lines[key] = key_line
        if key in keep_nodes:
            located.data[key] = value_node
            continue
        try:
            located.data[key] = loader.construct_object(value_node, deep=True)
        except ValueError as exc:  # e.g. an integer of 5,000 digits (Python's int limit)
            report(key_line, None, key, f"unreadable value: {exc}", path)
    return located


def read_yaml_mapping(path: Path, report: Report, keep_nodes: tuple[str, ...]):
    """(loader, header) for a YAML file whose top level is a mapping, or None after reporting."""
    text = read_text(path, report, str(path))
    if text is None:
        return None
    loader = _YamlLoader(text)
    try:
        root = loader.get_single_node()
        if root is None or not isinstance(root, yaml.MappingNode):
            line = root.start_mark.line + 1 if root is not None else 1
            report(line, None, "(top level)", "must be a mapping of suite fields", str(path))
            return None
        expanded = _expanded_nodes(root)
        if expanded > MAX_EXPANDED_NODES:
            report(
                1,
                None,
                "(yaml)",
                f"aliases expand to {expanded:,} nodes (limit {MAX_EXPANDED_NODES:,}):"
                " an alias bomb, or anchors reused far more than a golden set needs",
                str(path),
            )
            return None
        return loader, _yaml_mapping(loader, root, report, keep_nodes, str(path))
    except yaml.YAMLError as exc:
        line, message = _yaml_problem(exc)
        report(line, None, "(yaml)", f"broken YAML: {message}", str(path))
        return None


def read_yaml(path: Path, report: Report) -> Document | None:
    read = read_yaml_mapping(path, report, keep_nodes=("items",))
    if read is None:
        return None
    loader, header = read
    items_node = header.data.pop("items", None)
    items: list[Located] | None = None
    if items_node is None:
        report(header.line, None, "items", "missing field (a list of items)")
    elif not isinstance(items_node, yaml.SequenceNode):
        report(header.line_of("items"), None, "items", "must be a list of items")
    else:
        items = []
        try:
            for element in items_node.value:
                if isinstance(element, yaml.MappingNode):
                    items.append(_yaml_mapping(loader, element, report))
                else:
                    report(
                        element.start_mark.line + 1,
                        None,
                        "items",
                        "each item must be a mapping of fields",
                    )
        except yaml.YAMLError as exc:
            line, message = _yaml_problem(exc)
            report(line, None, "(yaml)", f"broken YAML: {message}")
            return None
    return Document(header, str(path), items, header.key_lines.get("items"))
