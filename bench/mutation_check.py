"""Mutation check of the pure core: how many simple operator mutants the module's unit tests kill.

Each mutant (and/or, ==/!=, </<=, >/>=, is/is not, in/not in, True/False, one list, tuple, set or
dict entry deleted, an if/while/ternary condition negated) is applied one at a time to a temporary
copy of src/ and tests/ (the working tree is never touched), and the module's non-integration unit
tests run there with the copy's src/ first on PYTHONPATH. Mutants inside string literals (message
texts, docstrings) are never made; a line ending in ``# no mutate`` is skipped.

Not run in CI (the whole set takes a while). Usage:

    .venv/bin/python bench/mutation_check.py lint watchfilter   # default: every module below
    .venv/bin/python bench/mutation_check.py kube --jobs 2 --show-survivors
"""

from __future__ import annotations

import argparse
import ast
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tokenize
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# module -> the unit tests that cover it (integration tests are deselected anyway)
MODULES: dict[str, list[str]] = {
    "render": ["tests/test_render.py", "tests/test_render_tasks.py"],
    "debounce": ["tests/test_debounce.py"],
    "lint": ["tests/test_lint.py"],
    "watchfilter": ["tests/test_watch_filter.py"],
    "images": ["tests/test_images_core.py"],
    "kube": ["tests/test_kube.py"],
}
SWAPS = {"and": "or", "or": "and", "==": "!=", "!=": "==", "<": "<=", "<=": "<", ">": ">=", ">=": ">",
         "True": "False", "False": "True"}
SKIP_MARK = "# no mutate"
TIMEOUT = 120  # seconds per mutant run; a hang counts as killed (the tests noticed)


@dataclass(frozen=True)
class Mutant:
    line: int
    what: str  # e.g. "and -> or", "delete entry 3 of list", "negate if"
    start: int  # offsets into the source text
    end: int
    replacement: str

    def apply(self, source: str) -> str:
        return source[:self.start] + self.replacement + source[self.end:]


def line_offsets(source: str) -> list[int]:
    offsets, total = [0], 0
    for line in source.splitlines(keepends=True):
        total += len(line)
        offsets.append(total)
    return offsets


class Positions:
    """(line, column) as ast and tokenize give them -> offsets into the text (columns are UTF-8 bytes in ast)."""

    def __init__(self, source: str) -> None:
        self.lines = source.splitlines(keepends=True)
        self.starts = line_offsets(source)

    def offset(self, line: int, col: int, utf8: bool = True) -> int:
        text = self.lines[line - 1]
        chars = len(text.encode("utf-8")[:col].decode("utf-8", "replace")) if utf8 else col
        return self.starts[line - 1] + chars

    def node(self, node: ast.AST) -> tuple[int, int]:
        return (self.offset(node.lineno, node.col_offset),  # type: ignore[attr-defined]
                self.offset(node.end_lineno, node.end_col_offset))  # type: ignore[attr-defined]


def skipped_lines(source: str) -> set[int]:
    return {number for number, line in enumerate(source.splitlines(), 1) if line.rstrip().endswith(SKIP_MARK)}


def token_mutants(source: str, pos: Positions) -> Iterator[Mutant]:
    """Operator and constant swaps; string tokens (f-strings included, on 3.11) are single tokens, so never touched."""
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    for index, token in enumerate(tokens):
        if token.type not in (tokenize.NAME, tokenize.OP):
            continue
        start = pos.offset(*token.start, utf8=False)
        end = pos.offset(*token.end, utf8=False)
        following = tokens[index + 1].string if index + 1 < len(tokens) else ""
        previous = tokens[index - 1].string if index else ""
        if token.string in SWAPS:
            yield Mutant(token.start[0], f"{token.string} -> {SWAPS[token.string]}", start, end, SWAPS[token.string])
        elif token.string == "is" and following != "not":
            yield Mutant(token.start[0], "is -> is not", start, end, "is not")
        elif token.string == "in" and previous != "not" and not _is_for_in(tokens, index):
            yield Mutant(token.start[0], "in -> not in", start, end, "not in")


def _is_for_in(tokens: list[tokenize.TokenInfo], index: int) -> bool:
    """The `in` of a for loop or comprehension (swapping it is a syntax error or meaningless)."""
    depth = 0
    for token in reversed(tokens[:index]):
        if token.string in (")", "]", "}"):
            depth += 1
        elif token.string in ("(", "[", "{"):
            if depth == 0:
                return False
            depth -= 1
        elif token.string == "for" and depth == 0:
            return True
        elif depth == 0 and (token.type in (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT)
                             or token.string in ("if", "and", "or", "=")):
            return False
    return False


def entry_mutants(tree: ast.AST, source: str, pos: Positions) -> Iterator[Mutant]:
    """Delete one entry of a list, set or dict display of two or more entries, or of a tuple of constants
    that is a sequence (not a record inside a table: those only break the shape)."""
    parents = {id(child): node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            entries = [(k if k is not None else v, v) for k, v in zip(node.keys, node.values, strict=True)]
        elif is_sequence(node, parents.get(id(node))):
            entries = [(e, e) for e in node.elts]  # type: ignore[attr-defined]
        else:
            continue
        if len(entries) < 2 or any(isinstance(v, ast.Starred) for _, v in entries):
            continue
        kind = type(node).__name__.lower()
        for i, (first, last) in enumerate(entries):
            start = pos.node(first)[0]
            if i + 1 < len(entries):
                end = pos.node(entries[i + 1][0])[0]
            else:
                start, end = pos.node(entries[i - 1][1])[1], pos.node(last)[1]
            if source[start:end].count("\n") > 40:
                continue
            yield Mutant(first.lineno, f"delete entry {i + 1} of {kind}", start, end, "")


def is_sequence(node: ast.AST, parent: ast.AST | None) -> bool:
    """A list or set display, or a tuple of constants that is not a record inside another display."""
    if isinstance(node, (ast.List, ast.Set)):
        return not isinstance(getattr(node, "ctx", None), ast.Store)
    return isinstance(node, ast.Tuple) and all(isinstance(e, ast.Constant) for e in node.elts) and \
        not isinstance(parent, (ast.Dict, ast.List, ast.Tuple, ast.Set))


def condition_mutants(tree: ast.AST, pos: Positions) -> Iterator[Mutant]:
    """Negate the condition of an if, elif, while, ternary or comprehension filter."""
    for node in ast.walk(tree):
        tests: list[ast.expr] = []
        if isinstance(node, (ast.If, ast.While, ast.IfExp)):
            tests = [node.test]
        elif isinstance(node, ast.comprehension):
            tests = list(node.ifs)
        for test in tests:
            start, end = pos.node(test)
            yield Mutant(test.lineno, f"negate {type(node).__name__.lower()} condition", start, end, "")


def mutants(source: str) -> list[Mutant]:
    tree = ast.parse(source)
    pos = Positions(source)
    found = list(token_mutants(source, pos)) + list(entry_mutants(tree, source, pos))
    for m in condition_mutants(tree, pos):
        found.append(Mutant(m.line, m.what, m.start, m.end, f"(not ({source[m.start:m.end]}))"))
    skip = skipped_lines(source) | docstring_lines(tree)
    typing = typing_spans(tree, pos)
    unique: dict[tuple[int, int, str], Mutant] = {}
    for m in found:
        if m.line in skip or any(start <= m.start < end for start, end in typing):
            continue
        if compiles(m.apply(source)):
            unique.setdefault((m.start, m.end, m.replacement), m)
    return sorted(unique.values(), key=lambda m: (m.start, m.what))


def typing_spans(tree: ast.AST, pos: Positions) -> list[tuple[int, int]]:
    """Annotations, generic subscripts (``Callable[[A], B]``) and decorators: mutants there change no behaviour
    the tests could see (``frozen=True`` -> False, a type argument deleted)."""
    nodes: list[ast.AST] = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            nodes += node.decorator_list
            nodes += [node.returns] if not isinstance(node, ast.ClassDef) and node.returns else []
        elif isinstance(node, (ast.arg, ast.AnnAssign)) and node.annotation:
            nodes.append(node.annotation)
        elif isinstance(node, ast.Subscript) and isinstance(node.value, (ast.Name, ast.Attribute)) and \
                _name_of(node.value) in GENERICS:
            nodes.append(node)
    return [pos.node(n) for n in nodes]


GENERICS = {"Callable", "Iterator", "Iterable", "Mapping", "Sequence", "dict", "list", "tuple", "set", "frozenset",
            "Optional", "Union", "TypeVar", "Generator", "type"}


def _name_of(node: ast.expr) -> str:
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""


def docstring_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            lines.update(range(body[0].lineno, (body[0].end_lineno or body[0].lineno) + 1))
    return lines


def compiles(source: str) -> bool:
    try:
        compile(source, "<mutant>", "exec")
    except (SyntaxError, ValueError):
        return False
    return True


# -- running ----------------------------------------------------------------------------------------------


def make_copy() -> Path:
    """A throwaway copy of what the tests need: src/, tests/, examples/, charts/ and pyproject.toml."""
    root = Path(tempfile.mkdtemp(prefix="devloop-mutation-"))
    for name in ("src", "tests", "examples", "charts"):
        if (REPO / name).exists():
            shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__", ".kit", "*.pyc"))
    shutil.copy2(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


def run_tests(copy: Path, tests: list[str]) -> bool:
    """True when the tests fail (the mutant is killed)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(copy / "src"), os.environ.get("PYTHONPATH", "")]),
               PYTHONDONTWRITEBYTECODE="1")
    argv = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-m", "not integration",
            "--timeout", str(TIMEOUT), *tests]
    try:
        done = subprocess.run(argv, cwd=copy, env=env, capture_output=True, timeout=TIMEOUT + 30)
    except subprocess.TimeoutExpired:
        return True
    return done.returncode != 0


@dataclass
class Outcome:
    mutant: Mutant
    killed: bool


def check_module(module: str, jobs: int) -> tuple[list[Outcome], bool]:
    relative = Path("src/devloop/core") / f"{module}.py"
    source = (REPO / relative).read_text(encoding="utf-8")
    found = mutants(source)
    copies = [make_copy() for _ in range(max(1, jobs))]
    try:
        baseline = not run_tests(copies[0], MODULES[module])
        if not baseline:
            return [], False
        free = list(copies)

        def one(mutant: Mutant) -> Outcome:
            copy = free.pop()
            try:
                target = copy / relative
                target.write_text(mutant.apply(source), encoding="utf-8")
                killed = run_tests(copy, MODULES[module])
                target.write_text(source, encoding="utf-8")
                return Outcome(mutant, killed)
            finally:
                free.append(copy)

        with ThreadPoolExecutor(max_workers=len(copies)) as pool:
            return list(pool.map(one, found)), True
    finally:
        for copy in copies:
            shutil.rmtree(copy, ignore_errors=True)


def report(module: str, outcomes: list[Outcome], seconds: float, show: bool) -> None:
    killed = sum(o.killed for o in outcomes)
    run = len(outcomes)
    score = 100.0 * killed / run if run else 100.0
    print(f"{module:12} killed {killed:4}/{run:<4} {score:5.1f}%   ({seconds:.0f}s)", flush=True)
    if show:
        lines = (REPO / "src/devloop/core" / f"{module}.py").read_text(encoding="utf-8").splitlines()
        for o in outcomes:
            if not o.killed:
                print(f"    survived line {o.mutant.line}: {o.mutant.what}: {lines[o.mutant.line - 1].strip()[:100]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", metavar="module",
                        help=f"core modules to mutate (default: all of {', '.join(MODULES)})")
    parser.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 2) // 2), help="copies run side by side")
    parser.add_argument("--show-survivors", action="store_true", help="list each mutant the tests missed")
    parser.add_argument("--list", action="store_true", help="only list the mutants, run nothing")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.modules) - set(MODULES))
    if unknown:
        parser.error(f"unknown module {', '.join(unknown)}; choose from {', '.join(MODULES)}")
    failed = False
    for module in args.modules or list(MODULES):
        if args.list:
            source = (REPO / "src/devloop/core" / f"{module}.py").read_text(encoding="utf-8")
            for m in mutants(source):
                print(f"{module}:{m.line}: {m.what}")
            continue
        began = time.monotonic()
        outcomes, baseline = check_module(module, args.jobs)
        if not baseline:
            print(f"{module:12} the unit tests fail without any mutant: fix them first ({' '.join(MODULES[module])})")
            failed = True
            continue
        report(module, outcomes, time.monotonic() - began, args.show_survivors)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
