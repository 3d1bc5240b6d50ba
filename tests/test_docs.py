"""README.md and docs/ stay true (issue 17, problem 9): every measured number there comes from a
results file named next to it, every public name and module they mention exists, every file
they point to is in the repository.

Numbers. A block of a document (a paragraph, a top-level list item, a table) that holds a
decimal number names its sources in a comment inside it, or on the line after the blank line
that ends it (for a list item: in it, or after the list):
``<!-- numbers: results/cpu/train/*.json configs/gowalla/lightgcn.json -->``
(paths from the repository root, globs allowed; ``file.json#key1,key2`` takes only the values
under those keys). Each decimal must then equal a number of those
files rounded to as many decimals, directly, times 100 (a percentage) or times a power of 1000
or 1024 (a unit change: s and ms, bytes and MB or MiB). A block inside a section that a command writes
(``<!-- bench:SECTION:start -->`` ... ``end``, ``<!-- kernel_static:begin -->`` ... ``end``)
takes the sources named anywhere in that section, when it names none itself. Settings are sourced the same way, from the config or
the code that defines them (``configs/``, ``data/splits.py``).

The exemptions, and only these:
- code spans and fenced code blocks (commands, formulas, literal settings such as ``lr 1e-3``);
- link targets, and version numbers right after a software name (``torch 2.13``,
  ``triton 3.6 and 3.9``, ``Python 3.11``);
- a block whose sources are the single word ``paper`` quotes a published paper: it must name the
  paper (``et al.`` or ``paper``) and its figures are not checked. Paper figures that a config's
  ``paper`` entry holds are sourced from that config instead.
"""
import glob
import importlib
import json
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
DECIMAL = re.compile(r"(?<![\w.,])((?:\d{1,3}(?:,\d{3})+|\d+)\.\d+)(?![\w.]*\d)")  # 1,553.4 too
SOURCES = re.compile(r"<!--\s*numbers:\s*(.*?)\s*-->")
NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
ITEM = re.compile(r"(?:[-*]|\d+\.) ")  # a top-level list item starts a block
VERSIONS = re.compile(r"(?i)\b(?:pytorch|torch|triton|python|pyg|cuda|numpy|scipy|"
                      r"pytest-benchmark)\s+\d+\.\d+(?:\.\d+)*"
                      r"(?:\s*(?:/|,|and|or)\s*\d+\.\d+(?:\.\d+)*)*")
FACTORS = (1, 100, 1e3, 1e-3, 1e-6, 1e-9, 2**-20, 2**-30)
PAPER = "paper"
GENERATED = re.compile(r"<!-- (?:bench:\w+:(?:start|end)|kernel_static:(?:begin|end)) -->")


def blocks(path: Path):
    """``(first line number, text, sources)`` of each block; code blocks are blanked (kept as
    empty lines, so line numbers stay right). A list item without sources of its own takes those
    of the list's comment; a block of a generated section, those named anywhere in it."""
    text = re.sub(r"```.*?```", lambda m: "\n" * m.group().count("\n"), path.read_text(),
                  flags=re.S)
    lines = text.split("\n")
    start, out, section = 0, [], None
    for i in range(len(lines) + 1):
        blank = i == len(lines) or not lines[i].strip()
        if blank or (i > start and ITEM.match(lines[i])):
            if i > start:
                body = "\n".join(lines[start:i])
                after = lines[i + 1] if blank and i + 1 < len(lines) else ""
                own, after = SOURCES.findall(body), SOURCES.findall(after)
                out.append([start + 1, body, " ".join(own).split(), " ".join(after).split(),
                            section, not blank])
            start = i + 1 if blank else i
        if i < len(lines) and GENERATED.search(lines[i]):
            section = None if section else i
    for k in range(len(out) - 2, -1, -1):  # a list's items take the comment after the list
        if out[k][5]:
            out[k][3] = out[k + 1][3]
    for block in out:
        block[2] = block[2] or block[3]
    for block in out:
        if block[4] is not None and not block[2]:
            block[2] = sorted({s for b in out if b[4] == block[4] for s in b[2]})
    return [tuple(block[:3]) for block in out]


def measured_decimals(body: str):
    prose = re.sub(r"`[^`\n]*`", " ", SOURCES.sub(" ", body))
    prose = re.sub(r"\]\([^)]*\)", "]", prose)  # link targets (file names)
    prose = VERSIONS.sub(" ", prose)
    return DECIMAL.findall(prose)


def _values(node, keys, inside=False):
    """The numbers of a parsed JSON document, or only those under the given keys."""
    if isinstance(node, dict):
        return [v for k, x in node.items() for v in _values(x, keys, inside or k in keys)]
    if isinstance(node, list):
        return [v for x in node for v in _values(x, keys, inside)]
    ok = isinstance(node, (int, float)) and not isinstance(node, bool)
    return [float(node)] if ok and (inside or not keys) else []


def numbers_of(patterns):
    """The numbers of the files ``patterns`` name; ``file.json#key1,key2``: only the values
    under those keys (the summary's ``recall@20``, not every epoch's ``valid_recall@20``)."""
    values = set()
    for pattern in patterns:
        path, _, keys = pattern.partition("#")
        found = sorted(glob.glob(str(ROOT / path), recursive=True))
        assert found, f"no file matches the source {pattern!r}"
        for name in (f for f in found if not f.endswith(".png")):
            text = Path(name).read_text(errors="ignore")
            if keys:
                values.update(_values(json.loads(text), set(keys.split(","))))
            else:
                values.update(float(m.group()) for m in NUMBER.finditer(text))
    return values


def matches(decimal: str, values) -> bool:
    places, x = len(decimal.split(".")[1]), float(decimal.replace(",", ""))
    return any(round(v * f, places) == x for v in values for f in FACTORS)


def problems_of(doc: Path):
    problems = []
    for line, body, sources in blocks(doc):
        decimals = measured_decimals(body)
        if not decimals:
            continue
        where = f"{doc.name}:{line}"
        if not sources:
            problems.append(f"{where}: numbers {decimals[:6]} without a <!-- numbers: ... -->")
        elif sources == [PAPER]:
            if "et al." not in body and PAPER not in body.lower():
                problems.append(f"{where}: 'numbers: paper' but the block names no paper")
        else:
            values = numbers_of(sources)
            wrong = [d for d in decimals if not matches(d, values)]
            if wrong:
                problems.append(f"{where}: {wrong} not in {sources}")
    return problems


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_measured_number_comes_from_its_results_file(doc):
    problems = problems_of(doc)
    assert not problems, "\n".join(problems)


def test_the_number_check_can_fail(tmp_path):
    results = tmp_path / "r.json"
    results.write_text('{"recall@20": 0.24851, "sec": 11.73, "bytes": 87200000}')
    doc = tmp_path / "x.md"
    doc.write_text(f"Recall 0.2485 in 11.7 s (11730 ms), 87.2 MB, torch 2.13, `lr 0.5`.\n"
                   f"<!-- numbers: {results} -->\n\n"
                   f"Recall 0.2486.\n\n<!-- numbers: {results} -->\n\n"
                   f"- No source 0.5.\n- Quoted 0.1830 from the paper <!-- numbers: paper -->\n\n"
                   f"| a | b |\n|---|---|\n| 0.1830 | 2 |\n\n<!-- numbers: paper -->\n")
    problems = problems_of(doc)
    assert len(problems) == 3, problems
    assert numbers_of([f"{results}#sec,bytes"]) == {11.73, 87200000.0}
    assert "'0.2486'" in problems[0]
    assert "0.5" in problems[1] and "without" in problems[1]
    assert "names no paper" in problems[2]


# -- names, modules and files ----------------------------------------------------------------------
def _code_spans(texts):
    for doc, text in texts:
        for span in re.findall(r"`([^`\n]+)`", text) + re.findall(r"```.*?```", text, re.S):
            yield doc, span


def _docs():
    return [(doc.name, doc.read_text()) for doc in DOCS]


def _resolve(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def missing_names(texts):
    return {f"{doc}: {name}" for doc, span in _code_spans(texts)
            for name in re.findall(r"(?<![\w./])(gnn(?:\.[A-Za-z_]\w*)+)", span)
            if not _resolve(name)}


def missing_modules(texts):
    return {f"{doc}: python -m {module}" for doc, span in _code_spans(texts)
            for module in re.findall(r"python3? -m ([\w.]+)", span)
            if module not in ("pytest", "pip", "venv")
            and importlib.util.find_spec(module) is None}


PATH = re.compile(r"(?<![\w/.-])((?:kernels|gnn|data|bench|tests|scripts|examples|configs|"
                  r"results|docs)/[\w./*<>{},-]*[\w*>}])")


def _expand(ref: str):
    """``a/{b,c}.json`` -> ``a/b.json``, ``a/c.json``; ``<name>`` -> ``*``."""
    ref = re.sub(r"<[^>]*>", "*", ref)
    brace = re.search(r"\{([^{}]*)\}", ref)
    if not brace:
        return [ref]
    return [p for alt in brace.group(1).split(",")
            for p in _expand(ref[:brace.start()] + alt + ref[brace.end():])]


def missing_files(texts):
    """Paths that are not in the repository, except those a documented command writes
    (``--out PATH``, ``--json PATH``), which exist once it has run."""
    outputs = tuple(p.rstrip("/") for _, text in texts
                    for p in re.findall(r"--(?:out|json) ([\w./-]+)", text))
    return {f"{doc}: {ref}" for doc, text in texts for ref in PATH.findall(text)
            if not ref.rstrip("/").startswith(outputs)
            and not all(glob.glob(str(ROOT / p)) for p in _expand(ref))}


def test_every_documented_gnn_name_exists():
    assert not missing_names(_docs()), sorted(missing_names(_docs()))


def test_every_documented_python_module_exists():
    assert not missing_modules(_docs()), sorted(missing_modules(_docs()))


def test_every_documented_file_exists():
    assert not missing_files(_docs()), sorted(missing_files(_docs()))


def test_the_name_checks_can_fail():
    texts = [("x.md", "`gnn.Trainer`, `gnn.kernels.csr_spmm`, `python -m gnn.train`, "
                      "gnn/models/lightgcn.py, results/reproduce/{bspm,gfcf}-cpu.json"),
             ("y.md", "`gnn.NoSuchModel`, `gnn.kernels.no_such_op`, `python -m gnn.no_such`, "
                      "gnn/no_such.py, results/reproduce/{mf,nothing}-cpu.json, "
                      "results/new/x.json from `python -m gnn.train --json results/new`")]
    assert missing_names(texts) == {"y.md: gnn.NoSuchModel", "y.md: gnn.kernels.no_such_op",
                                    "y.md: gnn.no_such"}
    assert missing_modules(texts) == {"y.md: python -m gnn.no_such"}
    assert missing_files(texts) == {"y.md: gnn/no_such.py",
                                    "y.md: results/reproduce/{mf,nothing}-cpu.json"}
