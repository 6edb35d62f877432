"""Run the ``>>>`` examples of a Markdown file's ```python blocks as one doctest (shared namespace)."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def python_blocks(path: Path) -> list[tuple[int, str]]:
    """``(line number, text)`` of every ```python block in ``path``."""
    text = path.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start()) + 2, m.group(1)) for m in FENCE.finditer(text)]


def run_markdown_doctest(path: Path) -> doctest.TestResults:
    """Run every ``>>>`` example of ``path`` in order, in one namespace; report failures with line numbers."""
    parser = doctest.DocTestParser()
    examples = []
    for line, block in python_blocks(path):
        for example in parser.get_examples(block):
            example.lineno += line - 1
            examples.append(example)
    test = doctest.DocTest(examples, {"__name__": "__markdown__"}, path.name, str(path), 0, None)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    failures: list[str] = []
    runner.run(test, out=failures.append)
    assert runner.failures == 0, f"{path}: {runner.failures} failing example(s)\n" + "".join(failures)
    return doctest.TestResults(runner.failures, runner.tries)
