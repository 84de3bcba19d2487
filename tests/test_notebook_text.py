"""The notebooks' text matches their committed outputs: the runtimes a header states are the runtimes the saved
run took.

Convention (every notebook in notebooks/, and every notebook in solutions/ whose first cell has one): the first
(header) cell has a paragraph starting ``**Runtime`` (``**Runtime:**``, ``**Runtime.**``, ...). Its **first
duration** ("3 min 33 s", "213 s", "about 4 minutes", "3.5 s") is the time the cells of the committed run took:
from ``iopub.execute_input`` of the first code cell to ``shell.execute_reply`` of the last (nbclient's timing
metadata, written by ``jupyter nbconvert --execute``; starting the kernel is not included). Within that
paragraph, a duration that follows ``section N`` (before the next ``;``, ``)`` or ``section``) is a section's time
and must be printed, within the same tolerance, by a code cell of section N (the cells from the heading ``N.`` to
the next heading of the same or a higher level; the whole notebook if no heading is numbered N). Everything else
in the paragraph (``SNNLAB_FAST=1`` times, GPU notes, kernel start) is not checked. Tolerance: 25%.

After a notebook is re-executed, only the numbers in its header need updating.
"""
from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = 0.25
_NUM = r"(\d+(?:\.\d+)?)"
DURATION = re.compile(
    rf"{_NUM}\s*min(?:ute)?s?\s+{_NUM}\s*s\b"            # 3 min 33 s
    rf"|{_NUM}\s*(?:min(?:ute)?s?)\b"                     # 4 minutes, 4 min
    rf"|{_NUM}\s*(?:s|sec|seconds?)\b")                   # 213 s, 3.5 s
SECTION = re.compile(r"\bsections?\s+(\d+[a-z]?)\b", re.I)


def durations(text: str) -> list[tuple[int, float]]:
    """Every duration in ``text`` as ``(position, seconds)``, in order."""
    out = []
    for m in DURATION.finditer(text):
        if m.group(1) is not None:
            sec = float(m.group(1)) * 60 + float(m.group(2))
        elif m.group(3) is not None:
            sec = float(m.group(3)) * 60
        else:
            sec = float(m.group(4))
        out.append((m.start(), sec))
    return out


def _source(cell) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def runtime_paragraph(nb: dict) -> str | None:
    """The header cell's paragraph that starts with ``**Runtime``, or None."""
    cells = nb.get("cells", [])
    if not cells or cells[0].get("cell_type") != "markdown":
        return None
    for para in re.split(r"\n\s*\n", _source(cells[0])):
        if para.lstrip().startswith("**Runtime"):
            return para.strip()
    return None


def stated_times(paragraph: str) -> tuple[float | None, dict[str, list[float]]]:
    """``(total, {section: [seconds, ...]})`` stated by a runtime paragraph (see the module docstring)."""
    ds = durations(paragraph)
    total = ds[0][1] if ds else None
    sections: dict[str, list[float]] = {}
    marks = list(SECTION.finditer(paragraph))
    for k, m in enumerate(marks):
        end = len(paragraph)
        stops = [paragraph.find(c, m.end()) for c in ";)"] + ([marks[k + 1].start()] if k + 1 < len(marks) else [])
        end = min([e for e in stops if e >= 0] + [end])
        for pos, sec in ds:
            if m.end() <= pos < end:
                sections.setdefault(m.group(1).lower(), []).append(sec)
    return total, sections


def _time(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def measured_cell_time(nb: dict) -> float:
    """Seconds from the first code cell's ``iopub.execute_input`` to the last one's ``shell.execute_reply``."""
    code = [c for c in nb["cells"] if c.get("cell_type") == "code"]
    if not code:
        raise ValueError("no code cells")
    first, last = (c.get("metadata", {}).get("execution", {}) for c in (code[0], code[-1]))
    if "iopub.execute_input" not in first or "shell.execute_reply" not in last:
        raise ValueError("no nbclient timing metadata: execute it with jupyter nbconvert --execute")
    return (_time(last["shell.execute_reply"]) - _time(first["iopub.execute_input"])).total_seconds()


def _heading(cell) -> tuple[int, str] | None:
    if cell.get("cell_type") != "markdown":
        return None
    m = re.match(r"\s*(#{1,6})\s+(.*)", _source(cell))
    return (len(m.group(1)), m.group(2)) if m else None


def section_cells(nb: dict, section: str) -> list[dict]:
    """The cells of section ``section`` (heading ``## 5.`` / ``### 5b.``), or every cell if no such heading."""
    cells = nb["cells"]
    for i, c in enumerate(cells):
        h = _heading(c)
        if h and re.match(rf"{re.escape(section)}[.:\s]", h[1], re.I):
            j = i + 1
            while j < len(cells) and not ((hj := _heading(cells[j])) and hj[0] <= h[0]):
                j += 1
            return cells[i:j]
    return cells


def printed_times(cells: list[dict]) -> list[float]:
    out = []
    for c in cells:
        for o in c.get("outputs", []):
            text = o.get("text", "")
            text = "".join(text) if isinstance(text, list) else text
            out += [sec for _, sec in durations(text)]
    return out


def close(a: float, b: float) -> bool:
    return abs(a - b) <= TOLERANCE * b


def header_problems(nb: dict, required: bool = True) -> list[str]:
    """Everything wrong with a notebook's runtime header, as sentences (empty: the header is true)."""
    para = runtime_paragraph(nb)
    if para is None:
        return ["the header cell has no paragraph starting **Runtime"] if required else []
    total, sections = stated_times(para)
    if total is None:
        return ["the **Runtime paragraph states no duration"]
    try:
        measured = measured_cell_time(nb)
    except ValueError as e:
        return [str(e)]
    problems = []
    if not close(total, measured):
        problems.append(f"header states {total:g} s for the run, its cells took {measured:.1f} s")
    for sec, stated in sections.items():
        printed = printed_times(section_cells(nb, sec))
        for t in stated:
            if not any(close(t, p) for p in printed):
                problems.append(f"header states {t:g} s for section {sec}; its cells print {printed or 'no time'}")
    return problems


NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS + SOLUTIONS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_header_runtimes_match_the_committed_run(path):
    nb = json.loads(path.read_text())
    problems = header_problems(nb, required=path.parent.name == "notebooks")
    assert not problems, f"{path.name}: " + "; ".join(problems)


# ------------------------------------------------------------------------------------------ the checker itself
def _nb(header: str, cells: list[tuple[str, str, str, str]]) -> dict:
    """A synthetic notebook: a header cell, then (kind, source, start, end) cells; code cells print ``source``."""
    out = [{"cell_type": "markdown", "metadata": {}, "source": header}]
    for kind, src, start, end in cells:
        if kind == "md":
            out.append({"cell_type": "markdown", "metadata": {}, "source": src})
        else:
            out.append({"cell_type": "code", "metadata": {"execution": {
                "iopub.execute_input": f"2026-12-01T10:{start}Z", "shell.execute_reply": f"2026-12-01T10:{end}Z"}},
                "outputs": [{"output_type": "stream", "name": "stdout", "text": src}], "source": "", "execution_count": 1})
    return {"cells": out, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


RUN = [("code", "imports\n", "00:00.000", "00:02.000"),
       ("md", "## 5. Experiment", "", ""),
       ("code", "75 runs of 2 epoch(s) in 126 s\n", "00:02.000", "02:08.000"),
       ("md", "## 6. Next", "", ""),
       ("code", "done\n", "02:08.000", "03:33.000")]


def test_durations_parse_the_header_forms():
    assert [s for _, s in durations("3 min 38 s, 213 s, about 4 minutes, 3.5 s, 12 min")] == [218, 213, 240, 3.5, 720]
    assert durations("5 seeds, 15 settings x 5 seeds, 5 ms per point, 1,437 samples") == []


def test_a_true_header_passes_and_sections_are_found():
    nb = _nb("# T\n\n**Runtime:** 3 min 33 s for the cells (section 5: 75 runs, 126 s); FAST: 20 s.", RUN)
    assert measured_cell_time(nb) == pytest.approx(213.0)
    assert stated_times(runtime_paragraph(nb)) == (213.0, {"5": [126.0]})
    assert header_problems(nb) == []


def test_a_wrong_total_fails():
    nb = _nb("# T\n\n**Runtime:** 7.6 s for the cells.", RUN)
    (problem,) = header_problems(nb)
    assert "7.6 s" in problem and "213.0 s" in problem


def test_a_wrong_section_time_fails_and_must_be_printed_in_its_section():
    wrong = _nb("# T\n\n**Runtime:** 213 s (section 5: 75 runs, 60 s).", RUN)
    assert any("section 5" in p for p in header_problems(wrong))
    # 126 s is printed in section 5, not in section 6
    elsewhere = _nb("# T\n\n**Runtime:** 213 s (section 6: 126 s).", RUN)
    assert any("section 6" in p for p in header_problems(elsewhere))


def test_a_missing_header_or_metadata_fails():
    assert header_problems(_nb("# T\n\nno runtime here", RUN)) == ["the header cell has no paragraph starting **Runtime"]
    assert header_problems(_nb("# T\n\nno runtime here", RUN), required=False) == []
    bare = _nb("# T\n\n**Runtime:** 213 s.", RUN)
    for c in bare["cells"]:
        c["metadata"] = {}
    assert "no nbclient timing metadata" in header_problems(bare)[0]
