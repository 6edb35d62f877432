"""Find the numbers in the documentation's prose and the tests that vouch for them.

A *number* is a run of digits (with ``,`` thousands separators, a decimal part, an exponent, a
``×10⁴``-style power, or a vulgar fraction such as ``½``) in README.md or docs/**/*.md, outside:

- fenced code blocks (their ``>>>`` examples run as doctests; MyST directives such as
  ``{klkit-pairs-table}`` compute their content when the site builds), inline code (MyST roles such as
  {klkit-pairs}`finite` are inline code too), ``$…$`` math, HTML comments and link targets;
- regions ``<!-- begin: NAME -->`` … ``<!-- end: NAME -->`` that a script in ``benchmarks/`` writes
  (the script must call ``write_section`` and name the region as a string literal);
- a few forms that are names, not quantities, listed in :data:`NOT_CLAIMS`: digits glued to a letter
  or underscore (``float32``, ``CartPole-v1``, ``k3``, ``D_2``), a citation's year, a dependency's
  version after its name (``Python 3.11``), and the integers 0 and 1 standing alone (``KL ≥ 0``,
  "sums to 1", "k = 1"), which in this documentation are mathematical constants, not measurements.

A number is *covered* when a test in ``tests/`` carries ``@pytest.mark.doc_claim(FILE, FRAGMENT)``
and FRAGMENT (whitespace-insensitive) occurs in FILE around the number: the test asserts the
statement, computing the value from the code or an independent reference.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXCLUDED = {"docs/changelog.md"}

NUMBER = re.compile(
    r"(?<![\w.])"  # not glued to a name (float32, v1, k3, D_2) nor a path/extension
    r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?(?![⁰¹²³⁴⁵⁶⁷⁸⁹⁻\d])"
    r"|(?<![\w.])\d+[⁰¹²³⁴⁵⁶⁷⁸⁹⁻]+"
    r"|[½⅓¼¾⅛]"
)
"""A quantity: ``4,000``, ``0.75``, ``1e-12``, ``2·10⁴`` (as two numbers), ``½``."""

YEAR = re.compile(
    r"(?:et al\.?,?|ICLR|NeurIPS|ICML|AISTATS|JMLR|UAI|COLT|arXiv|Annals[^,]*,|Transactions[^,]*,|"
    r"[A-Z][a-zé]+(?: and [A-Z][a-zé]+)?,?|\()\s*$"
)
VERSION = re.compile(r"(?:Python|torch|PyTorch|TRL|trl|transformers|numpy|scipy|numba|Sphinx|version)\s*[<>=]*\s*$")

NOT_CLAIMS = (
    "digits glued to a letter, '_' or '.' (float32, CartPole-v1, k3, D_2, .npy): names",
    "a 4-digit year 1900-2099 after an author, 'et al.', a venue or '(': a citation",
    "a version after a dependency's name (Python 3.11, torch 2.13): a floor, not a measurement",
    "a dimension's name (1-D, 2-D)",
    "the integers 0 and 1 alone (not 0.5, 1e-3, 1 % or 1×): constants of the mathematics (KL >= 0, sums to 1)",
)


@dataclass(frozen=True)
class Number:
    """One number of the prose: where it is and the line it sits in."""

    file: str
    line: int
    text: str
    start: int
    end: int
    context: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.text!r} in: {self.context.strip()}"


def doc_files() -> list[Path]:
    """README.md and every docs/**/*.md except the changelog, sorted."""
    files = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    return [f for f in files if f.relative_to(ROOT).as_posix() not in EXCLUDED and "_build" not in f.parts]


def generated_regions(doc: str) -> set[str]:
    """Names of the regions of ``doc`` (``"docs/rlhf.md"``) that a script in benchmarks/ writes.

    A script counts when it calls ``write_section``, names the region as a string literal, and either
    names ``doc`` as a string literal or ``doc`` is ``docs/benchmarks.md`` (``write_section``'s default).
    """
    names: set[str] = set()
    for script in sorted((ROOT / "benchmarks").glob("*.py")):
        source = script.read_text(encoding="utf-8")
        literals = set(re.findall(r"""["']([A-Za-z0-9_./-]+)["']""", source))
        if "write_section(" in source and (doc == "docs/benchmarks.md" or doc in literals):
            names.update(literals)
    return names


def _blank(text: str, start: int, end: int) -> str:
    """``text`` with ``[start, end)`` replaced by spaces, newlines kept (so offsets and lines hold)."""
    return text[:start] + re.sub(r"[^\n]", " ", text[start:end]) + text[end:]


def scrub(text: str, regions: set[str]) -> str:
    """Blank out everything that is not a claim-bearing part of the prose (see the module docstring)."""
    patterns = [
        re.compile(r"<!-- begin: ([A-Za-z0-9_.-]+) -->.*?<!-- end: \1 -->", re.DOTALL),
        re.compile(r"^(```+|~~~+).*?^\1\s*$", re.DOTALL | re.MULTILINE),
        re.compile(r"<!--.*?-->", re.DOTALL),
        re.compile(r"(`+).+?\1", re.DOTALL),
        re.compile(r"\$\$.+?\$\$|\$[^$\n]+\$", re.DOTALL),
        re.compile(r"\]\([^)\s]*\)"),
        re.compile(r"<https?://[^>]+>|https?://\S+"),
    ]
    for i, pattern in enumerate(patterns):
        for m in reversed(list(pattern.finditer(text))):
            if i == 0 and m.group(1) not in regions:
                continue
            text = _blank(text, m.start(), m.end())
    return text


def _exempt(scrubbed: str, m: re.Match[str]) -> bool:
    value, before = m.group(0), scrubbed[max(0, m.start() - 60) : m.start()]
    after = scrubbed[m.end() : m.end() + 1]
    if value in {"0", "1"} and not re.match(r"\s*[%×]", scrubbed[m.end() : m.end() + 3]):
        return True
    if re.fullmatch(r"(19|20)\d\d", value) and YEAR.search(before):
        return True
    if re.fullmatch(r"\d+\.\d+(\.\d+)?", value) and VERSION.search(before):
        return True
    if scrubbed[m.end() : m.end() + 2] == "-D":
        return True
    return bool(after and ((after.isalpha() and after not in "×xe") or after == "_"))


def numbers(path: Path, regions: set[str] | None = None) -> list[Number]:
    """Every number of ``path``'s prose that is not exempt (``regions``: the generated ones, found if None)."""
    text = path.read_text(encoding="utf-8")
    rel = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name
    scrubbed = scrub(text, generated_regions(rel) if regions is None else regions)
    lines = text.splitlines()
    found = []
    for m in NUMBER.finditer(scrubbed):
        if _exempt(scrubbed, m):
            continue
        line = scrubbed.count("\n", 0, m.start()) + 1
        found.append(Number(rel, line, m.group(0), m.start(), m.end(), lines[line - 1]))
    return found


@dataclass(frozen=True)
class Claim:
    """One ``doc_claim`` marker: the test that carries it and the sentence fragment it asserts."""

    test: str
    file: str
    fragment: str


def claims(tests: Path = ROOT / "tests") -> list[Claim]:
    """Every ``pytest.mark.doc_claim(FILE, FRAGMENT)`` in tests/*.py, found by parsing (not importing)."""
    found = []
    for path in sorted(tests.glob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        aliases = {  # claim = pytest.mark.doc_claim
            target.id
            for node in tree.body
            if isinstance(node, ast.Assign) and _is_marker(node.value)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        strings = _string_constants(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                continue
            for deco in node.decorator_list:
                if not (
                    isinstance(deco, ast.Call)
                    and (_is_marker(deco.func) or (isinstance(deco.func, ast.Name) and deco.func.id in aliases))
                ):
                    continue
                args = [_string(a, strings) for a in deco.args]
                if len(args) != 2 or None in args:
                    raise ValueError(f"{path.name}:{deco.lineno}: doc_claim takes two strings (file, fragment)")
                found.append(Claim(f"{path.name}::{node.name}", args[0], args[1]))
    return found


def _string_constants(tree: ast.Module) -> dict[str, str]:
    """Module-level ``NAME = "text"`` and ``A, B = "x", "y"`` assignments."""
    out: dict[str, str] = {}
    for node in tree.body:
        if not isinstance(node, ast.Assign):
            continue
        for target in node.targets:
            pairs = (
                zip(target.elts, node.value.elts, strict=False)
                if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple)
                else [(target, node.value)]
            )
            for name, value in pairs:
                if isinstance(name, ast.Name) and isinstance(value, ast.Constant) and isinstance(value.value, str):
                    out[name.id] = value.value
    return out


def _string(node: ast.expr, strings: dict[str, str]) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return strings.get(node.id) if isinstance(node, ast.Name) else None


def _is_marker(node: ast.expr) -> bool:
    """``pytest.mark.doc_claim`` or ``mark.doc_claim``."""
    return isinstance(node, ast.Attribute) and node.attr == "doc_claim"


def sentence_numbers(file: str, fragment: str) -> list[float]:
    """The numbers of ``fragment`` as it occurs in ``file`` (which it must), in order, as floats.

    A covering test compares these with what the code computes, so the documented value and the
    code's cannot drift apart.
    """
    text = (ROOT / file).read_text(encoding="utf-8")
    assert fragment_spans(text, fragment), f"{file} no longer says {fragment!r}: update the test with the text"
    values = []
    for m in NUMBER.finditer(fragment):
        token = m.group(0)
        if token in FRACTIONS:
            values.append(FRACTIONS[token])
            continue
        digits = token.translate(SUPERSCRIPTS)
        if digits != token:  # 10⁶: a power
            head = re.match(r"\d+", token).group(0)
            values.append(float(head) ** int(digits[len(head) :]))
        else:
            values.append(float(token.replace(",", "")))
    return values


FRACTIONS = {"½": 0.5, "⅓": 1 / 3, "¼": 0.25, "¾": 0.75, "⅛": 0.125}
SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")


def fragment_spans(text: str, fragment: str) -> list[tuple[int, int]]:
    """Offsets in ``text`` of every occurrence of ``fragment``, any run of whitespace matching any other."""
    words = fragment.split()
    if not words:
        return []
    pattern = re.compile(r"\s+".join(re.escape(w) for w in words))
    return [(m.start(), m.end()) for m in pattern.finditer(text)]
