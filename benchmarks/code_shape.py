"""Prints the shape of the code: lines per module and each module's longest function, for the
packages named (default: harness and memseg). A figure for reviews of structure, not a test.

    python benchmarks/code_shape.py [--min-lines N] [PACKAGE ...]
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def longest_function(tree: ast.Module) -> tuple[str, int]:
    """(qualified name, lines) of the longest function or method, decorators excluded."""
    best = ("", 0)

    def visit(node: ast.AST, prefix: str) -> None:
        nonlocal best
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (child.end_lineno or child.lineno) - child.lineno + 1
                if length > best[1]:
                    best = (prefix + child.name, length)
                visit(child, prefix + child.name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")

    visit(tree, "")
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("packages", nargs="*", default=["harness", "memseg"])
    parser.add_argument("--min-lines", type=int, default=0, help="list only modules at least this long")
    args = parser.parse_args()
    print(f"{'module':44} {'lines':>6}  longest function")
    for package in args.packages:
        for path in sorted((REPO / package).rglob("*.py")):
            text = path.read_text()
            lines = len(text.splitlines())
            if lines < args.min_lines:
                continue
            name, length = longest_function(ast.parse(text))
            print(
                f"{path.relative_to(REPO)!s:44} {lines:6}  {name} ({length})"
                if name
                else f"{path.relative_to(REPO)!s:44} {lines:6}"
            )


if __name__ == "__main__":
    main()
