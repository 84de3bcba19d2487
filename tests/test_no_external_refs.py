"""The repository stands alone: no reference to files outside it, live relative links, docs that match the recipes.

A user who clones snnlab has only the repository. So:

* no tracked text file under ``snnlab/``, ``notebooks/``, ``tests/``, ``benchmarks/``, ``docs/`` or ``README.md``
  may point at a file that lives outside it (the patterns are in ``FORBIDDEN`` below: a sibling folder of
  background notes, design or style notes, or a bare ``papers.md`` that is not ``docs/papers.md``); the papers'
  notes are ``docs/papers.md``;
* every relative link in ``README.md`` and ``docs/**/*.md`` points to an existing file (and, with ``#anchor``, to
  an existing heading or ``<a id>`` there), and every ``docs/<file>.md#anchor`` cited anywhere exists;
* the published-results tables of ``docs/papers.md`` agree with every recipe's ``paper_top1`` in
  ``snnlab/recipes.py`` (dataset, model, T, top-1, baseline), one row per recipe.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCANNED_DIRS = ("snnlab", "notebooks", "tests", "benchmarks", "docs")
SCANNED_FILES = ("README.md",)
THIS_FILE = Path(__file__).resolve().relative_to(ROOT).as_posix()
SKIP_DIRS = {".git", ".venv", "__pycache__", ".ipynb_checkpoints", ".pytest_cache", "node_modules"}

#: (pattern, what it refers to) -- each one a file that is not in the repository
FORBIDDEN = [
    (re.compile(r"\.\./shared", re.I), "a folder next to the repository"),
    (re.compile(r"shared/papers\.md", re.I), "the outside notes shared/papers.md (use docs/papers.md)"),
    (re.compile(r"shared/seeds", re.I), "the outside abstracts shared/seeds (use docs/papers.md)"),
    (re.compile(r"DESIGN\.md"), "DESIGN.md, not in the repository (say it, or point to README.md / docs/)"),
    (re.compile(r"STYLE\.md"), "STYLE.md, not in the repository (say it, or point to README.md / docs/)"),
    (re.compile(r"(?<![\w/.-])papers\.md", re.I), "a bare papers.md: write docs/papers.md (the file in the repository)"),
]


def _listed_files() -> list[str]:
    """Tracked and untracked-but-not-ignored files (repository-relative, posix) in the scanned places."""
    if shutil.which("git") and (ROOT / ".git").exists():
        out = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z", "--", *SCANNED_DIRS,
             *SCANNED_FILES],
            cwd=ROOT, capture_output=True, check=False)
        if out.returncode == 0:
            names = [n for n in out.stdout.decode("utf-8", "replace").split("\0") if n]
            return sorted({n for n in names if (ROOT / n).is_file()})
    found = [f for f in SCANNED_FILES if (ROOT / f).is_file()]
    for top in SCANNED_DIRS:
        for dirpath, dirnames, filenames in os.walk(ROOT / top):
            dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not d.startswith(".")]
            found += [(Path(dirpath) / f).relative_to(ROOT).as_posix() for f in filenames]
    return sorted(found)


def _text(rel: str) -> str | None:
    """The file's text, or None for a binary file (NUL byte or not UTF-8)."""
    data = (ROOT / rel).read_bytes()
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


TEXT_FILES = {rel: txt for rel in _listed_files() if (txt := _text(rel)) is not None}


def test_the_scan_sees_the_project():
    for must in ("README.md", "docs/papers.md", "snnlab/recipes.py", THIS_FILE):
        assert must in TEXT_FILES, f"{must} not found among the scanned files"
    assert any(f.startswith("notebooks/") and f.endswith(".ipynb") for f in TEXT_FILES)


def test_no_reference_to_files_outside_the_repository():
    bad = []
    for rel, txt in TEXT_FILES.items():
        if rel == THIS_FILE:
            continue
        for lineno, line in enumerate(txt.splitlines(), 1):
            for pat, what in FORBIDDEN:
                if pat.search(line):
                    bad.append(f"{rel}:{lineno}: {what}: {line.strip()[:160]}")
    assert not bad, "references to files outside the repository:\n" + "\n".join(bad)


# ------------------------------------------------------------------------------------------------- links
_FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.M | re.S)
_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_ANCHOR_TAG = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"", re.I)
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.M)
_DOC_ANCHOR = re.compile(r"\b(docs/[\w./-]+\.md)#([\w-]+)")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation (not ``-``/``_``) dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link counts by its text
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def _anchors(md: Path) -> set[str]:
    txt = _FENCE.sub("", md.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    out = set(_ANCHOR_TAG.findall(txt))
    for h in _HEADING.findall(txt):
        s = _slug(h)
        out.add(s if s not in seen else f"{s}-{seen[s]}")
        seen[s] = seen.get(s, 0) + 1
    return out


def _markdown_files() -> list[str]:
    return [f for f in TEXT_FILES if f == "README.md" or (f.startswith("docs/") and f.endswith(".md"))]


def test_markdown_files_to_check_exist():
    assert "README.md" in _markdown_files() and "docs/papers.md" in _markdown_files()


@pytest.mark.parametrize("rel", _markdown_files())
def test_relative_links_point_to_existing_files(rel):
    src = ROOT / rel
    body = _CODE.sub("", _FENCE.sub("", TEXT_FILES[rel]))
    bad = []
    for lineno, line in enumerate(body.splitlines(), 1):
        for target in _LINK.findall(line):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto:, ...
                continue
            path, _, anchor = target.partition("#")
            dest = (src.parent / path).resolve() if path else src
            if not dest.exists():
                bad.append(f"{rel}:{lineno}: {target} -> no such file")
            elif ROOT not in dest.parents and dest != ROOT:
                bad.append(f"{rel}:{lineno}: {target} -> outside the repository")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                bad.append(f"{rel}:{lineno}: {target} -> no anchor #{anchor} in {dest.relative_to(ROOT)}")
    assert not bad, "broken relative links:\n" + "\n".join(bad)


def test_cited_docs_anchors_exist():
    bad = []
    for rel, txt in TEXT_FILES.items():
        for lineno, line in enumerate(txt.splitlines(), 1):
            for path, anchor in _DOC_ANCHOR.findall(line):
                dest = ROOT / path
                if not dest.is_file():
                    bad.append(f"{rel}:{lineno}: {path} does not exist")
                elif anchor not in _anchors(dest):
                    bad.append(f"{rel}:{lineno}: {path}#{anchor}: no such anchor")
    assert not bad, "citations of docs/ sections that do not exist:\n" + "\n".join(bad)


# ---------------------------------------------------------------------------- docs tables vs recipes.py
_RESULT_COLUMNS = ("snnlab dataset", "snnlab model", "T", "Top-1 (%)", "Baseline (%)", "Recipe")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _result_rows() -> list[tuple[str, int, dict]]:
    """(file, line, {column: cell}) for every row of every docs table whose header has the result columns."""
    rows = []
    for rel in _markdown_files():
        if not rel.startswith("docs/"):
            continue
        lines = TEXT_FILES[rel].splitlines()
        header = None
        for i, line in enumerate(lines, 1):
            if not line.lstrip().startswith("|"):
                header = None
                continue
            cells = _cells(line)
            if header is None:
                header = cells if all(c in cells for c in _RESULT_COLUMNS) else []
            elif header and not all(set(c) <= set("-: ") for c in cells):
                assert len(cells) == len(header), f"{rel}:{i}: {len(cells)} cells under {len(header)} columns"
                rows.append((rel, i, dict(zip(header, cells))))
    return rows


def _unquote(cell: str) -> str:
    return cell.strip().strip("`")


def test_docs_results_tables_agree_with_every_recipe():
    from snnlab import recipes

    rows = _result_rows()
    by_recipe: dict[str, list] = {}
    for rel, line, row in rows:
        by_recipe.setdefault(_unquote(row["Recipe"]), []).append((rel, line, row))
    unknown = sorted(set(by_recipe) - set(recipes.RECIPES))
    assert not unknown, f"docs rows name recipes that do not exist: {unknown}"
    bad = []
    for name, r in recipes.RECIPES.items():
        found = by_recipe.get(name, [])
        if len(found) != 1:
            bad.append(f"{name}: {len(found)} rows in the docs' results tables, want 1")
            continue
        rel, line, row = found[0]
        where = f"{rel}:{line} ({name})"
        got = (_unquote(row["snnlab dataset"]), _unquote(row["snnlab model"]), row["T"])
        if got != (r.dataset, r.model, str(r.T)):
            bad.append(f"{where}: dataset/model/T {got}, recipes.py has {(r.dataset, r.model, str(r.T))}")
        top1 = row["Top-1 (%)"]
        nums = [float(x) for x in _NUMBER.findall(top1)]
        if nums != [r.paper_top1]:
            bad.append(f"{where}: top-1 {top1!r}, recipes.py has paper_top1={r.paper_top1}")
        if ("about" in top1.lower()) != r.approx:
            bad.append(f"{where}: top-1 {top1!r} says 'about' iff the recipe is approx (approx={r.approx})")
        doc_base = sorted(float(x) for x in _NUMBER.findall(row["Baseline (%)"]))
        rec_base = sorted(float(x) for x in _NUMBER.findall(r.baseline))
        if doc_base != rec_base:
            bad.append(f"{where}: baseline {row['Baseline (%)']!r}, recipes.py has {r.baseline!r}")
    assert not bad, "docs/papers.md and snnlab/recipes.py disagree:\n" + "\n".join(bad)


def test_docs_explain_the_source_tags_the_recipes_use():
    from snnlab import recipes

    txt = TEXT_FILES["docs/papers.md"]
    section = txt.split('<a id="source-tags"></a>', 1)[1].split("<a id=", 1)[0]
    for tag in ("paper", "code", "recall", "code README", "paper abstract"):
        assert f"`[{tag}]`" in section, f"docs/papers.md's source tags do not explain [{tag}]"
    used = {t.split(",")[0].split(" ")[0] for r in recipes.RECIPES.values()
            for t in re.findall(r"\[([A-Za-z][^\]]*)\]", r.source)}  # not "Resize([48, 48])"
    assert used <= {"paper", "code", "recall"}, used  # every recipe tag starts with an explained one


def test_docs_mark_chi_as_a_reconstruction():
    txt = TEXT_FILES["docs/papers.md"]
    chi = txt.split('<a id="chi"></a>', 1)[1]
    assert "reconstruction" in chi.split("###", 1)[0].lower()
    assert "abstract" in chi.split("###", 1)[0].lower()
