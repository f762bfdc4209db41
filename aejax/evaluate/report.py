"""`WORKDIR/report.md`: one section per evaluation task, replaced when the task is re-run.

A section is delimited by `<!-- task:NAME -->` ... `<!-- /task -->` and holds the command that
produced it, the task's scalar metrics, summaries of its long tables (the denoising grid as a
corruption-by-level table of PSNR) and its figures inline, with paths relative to the workdir.

Each section records the epoch of the checkpoint it scored (`<!-- scored-epoch:E -->`, and in words
on its Run line). Whenever the report is written for a run at epoch N (`write_report(..., epoch=N)`,
or `mark_stale(workdir, N)` after training goes on), the sections that scored another epoch get a
"Stale" line under their heading saying so and how to refresh them; a section re-scored at N loses it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Mapping
from typing import Any

from aejax.train.metrics import write_atomically

MAX_ROWS = 20  # list-of-row results longer than this are left to eval_TASK.json


def _literal(value: Any) -> str:
    """A Python literal for `value` with double-quoted strings (what `--option` parses, easy to quote in a shell)."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        inner = ", ".join(_literal(v) for v in value) + ("," if isinstance(value, tuple) and len(value) == 1 else "")
        return ("[" + inner + "]") if isinstance(value, list) else ("(" + inner + ")")
    return repr(value)


def eval_command(workdir: str, task: str, options: Mapping[str, Any]) -> str:
    """The `aejax eval` command line that runs `task` with `options` on `workdir`."""
    parts = ["aejax", "eval", shlex.quote(str(workdir)), "--task", task]
    for name, value in options.items():
        text = value if isinstance(value, str) else _literal(value)
        parts += ["--option", shlex.quote(f"{name}={text}")]
    return " ".join(parts)


def _fmt(v: Any) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def grid_table(grid: list[Mapping[str, Any]]) -> str:
    """The denoising grid as one row per corruption and one column per level: PSNR denoised / input (dB),
    or for 1-D data SNR denoised / input (dB).

    When the corruptions share their levels the columns are those levels; otherwise the columns
    are the level ranks and each cell names its level.
    """
    corruptions = list(dict.fromkeys(r["corruption"] for r in grid))
    by = {c: sorted((r for r in grid if r["corruption"] == c), key=lambda r: r["level"]) for c in corruptions}
    level_sets = {tuple(r["level"] for r in rows) for rows in by.values()}
    shared = len(level_sets) == 1
    width = max(len(rows) for rows in by.values())
    header = ["corruption"] + ([f"{v:g}" for v in next(iter(level_sets))] if shared
                               else [f"level {i + 1}" for i in range(width)])
    rows = []
    for c, cells in by.items():
        row = [c]
        for r in cells:
            if "snr_out" in r:
                score = f"{r['snr_out']:.2f} / {r['snr_in']:.2f}"
            else:
                score = f"{r['psnr']:.2f} / {r['input_psnr']:.2f}" if "input_psnr" in r else f"{r['psnr']:.2f}"
            row.append(score if shared else f"{r['level']:g}: {score}")
        rows.append(row + [""] * (width - len(cells)))
    measure = "SNR" if all("snr_out" in r for r in grid) else "PSNR"
    return (f"{measure} in dB, denoised / input, by corruption (rows) and level (columns):\n\n"
            + _table(header, rows))


def _rows_table(name: str, rows: list[Mapping[str, Any]]) -> str:
    scalar_keys = list(dict.fromkeys(k for r in rows for k, v in r.items() if not isinstance(v, (list, dict))))
    if len(rows) > MAX_ROWS:
        return f"`{name}`: {len(rows)} rows (columns {', '.join(scalar_keys)}); see `eval_TASK.json`.\n"
    return f"`{name}`:\n\n" + _table(scalar_keys, [[r.get(k, "") for k in scalar_keys] for r in rows])


def render_section(workdir: str, task: str, results: Mapping[str, Any], *, command: str, run_line: str = "",
                   epoch: int | None = None) -> str:
    """One task's section of report.md (markers included; `epoch`: the scored checkpoint's, recorded)."""
    grid = results.get("grid")
    is_grid = isinstance(grid, list) and grid and all(isinstance(r, Mapping) and {"corruption", "level"} <= set(r)
                                                      and ("psnr" in r or "snr_out" in r) for r in grid)
    scalars = [(k, v) for k, v in results.items() if not isinstance(v, (list, dict, tuple))
               and not (is_grid and "@" in k)  # per-level keys: the grid table shows them
               and not k.startswith("run/")]  # the scored checkpoint: the Run line says it
    out = [f"<!-- task:{task} -->", f"## {task}", ""]
    if epoch is not None:
        out.append(f"<!-- scored-epoch:{int(epoch)} -->")
    out += [f"Command: `{command}`", ""]
    if run_line:
        out += [run_line, ""]
    out.append(_table(["metric", "value"], [[k, v] for k, v in scalars]))
    if is_grid:
        out.append(grid_table(grid))
    for name, value in results.items():
        if name == "figures" or (name == "grid" and is_grid):
            continue
        if isinstance(value, list) and value and all(isinstance(r, Mapping) for r in value):
            out.append(_rows_table(name, value).replace("eval_TASK.json", f"eval_{task}.json"))
        elif isinstance(value, Mapping) and value and all(isinstance(r, Mapping) for r in value.values()):
            cols = list(dict.fromkeys(k for r in value.values() for k in r))
            out.append(f"`{name}`:\n\n" + _table([name] + cols, [[k] + [r.get(c, "") for c in cols]
                                                                  for k, r in value.items()]))
    figures = results.get("figures")
    if figures is None:  # tasks that write figures/eval_TASK.png without listing it
        default = os.path.join(workdir, "figures", f"eval_{task}.png")
        figures = [default] if os.path.isfile(default) else []
    for path in figures:
        rel = os.path.relpath(os.path.abspath(path), os.path.abspath(workdir)).replace(os.sep, "/")
        stem = os.path.splitext(os.path.basename(path))[0]
        out.append(f"![{task}: {stem}]({rel})\n")
    out.append("<!-- /task -->")
    return "\n".join(out) + "\n"


def _section_pattern(task: str) -> re.Pattern:
    return re.compile(rf"<!-- task:{re.escape(task)} -->.*?<!-- /task -->\n?", re.DOTALL)


def replace_section(text: str, task: str, section: str) -> str:
    """`text` with the section of `task` replaced by `section` (appended when absent; extra copies dropped)."""
    pattern = _section_pattern(task)
    match = pattern.search(text)
    if match is None:
        sep = "" if not text or text.endswith("\n\n") else ("\n" if text.endswith("\n") else "\n\n")
        return text + sep + section
    head, tail = text[:match.start()], pattern.sub("", text[match.end():])
    return head + section + tail


_ANY_SECTION = re.compile(r"<!-- task:([\w.-]+) -->.*?<!-- /task -->\n?", re.DOTALL)
_SCORED = re.compile(r"<!-- scored-epoch:(\d+) -->")
_RUN_LINE_EPOCH = re.compile(r"^Run: .*?(?:\(|scored at )epoch (\d+)\b", re.MULTILINE)  # older reports
_STALE_LINE = re.compile(r"^> \*\*Stale:\*\* .*<!-- stale -->\n\n?", re.MULTILINE)


def scored_epoch(section: str) -> int | None:
    """The epoch a section scored: its `<!-- scored-epoch:E -->` marker, else its Run line's "(epoch E, ..."."""
    match = _SCORED.search(section)
    if match:
        return int(match.group(1))
    match = _RUN_LINE_EPOCH.search(section)
    return int(match.group(1)) if match else None


def mark_stale_sections(text: str, epoch: int) -> str:
    """`text` with a "Stale" line under the heading of every section that scored an epoch other than `epoch`
    (the run's newest checkpoint), and none under the sections that scored it."""
    def mark(match: re.Match) -> str:
        section = _STALE_LINE.sub("", match.group(0))
        scored = scored_epoch(section)
        if scored is None or scored == int(epoch):
            return section
        heading = f"## {match.group(1)}\n\n"
        stale = (f"> **Stale:** scored the checkpoint of epoch {scored}, but the run's newest checkpoint is epoch "
                 f"{int(epoch)}: run the command below again to refresh this section. <!-- stale -->\n\n")
        at = section.find(heading)
        return section if at < 0 else section[:at + len(heading)] + stale + section[at + len(heading):]

    return _ANY_SECTION.sub(mark, text)


def write_report(workdir: str, task: str, results: Mapping[str, Any], *, command: str, run_line: str = "",
                 epoch: int | None = None) -> str:
    """Writes (or replaces) `task`'s section of WORKDIR/report.md; returns the report's path.

    With `epoch` (the scored checkpoint's, the run's newest) the section records it and the other
    sections are marked stale when they scored another epoch (`mark_stale_sections`).
    """
    path = os.path.join(workdir, "report.md")
    text = ""
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            text = f.read()
    text = replace_section(text, task, render_section(workdir, task, results, command=command, run_line=run_line,
                                                      epoch=epoch))
    if epoch is not None:
        text = mark_stale_sections(text, epoch)
    write_atomically(path, text)
    return path


def mark_stale(workdir: str, epoch: int) -> bool:
    """Marks the sections of WORKDIR/report.md that scored an epoch other than `epoch` as stale (for a run
    that trained on to `epoch` after it was evaluated). Returns whether report.md changed."""
    path = os.path.join(workdir, "report.md")
    if not os.path.isfile(path):
        return False
    with open(path, encoding="utf-8") as f:
        text = f.read()
    marked = mark_stale_sections(text, epoch)
    if marked != text:
        write_atomically(path, marked)
    return marked != text


def newest_checkpoint_epoch(workdir: str) -> int | None:
    """The epoch of the newest checkpoint in WORKDIR/checkpoints (its step directory's name), without loading it."""
    directory = os.path.join(workdir, "checkpoints")
    steps = [int(n) for n in os.listdir(directory) if n.isdigit()] if os.path.isdir(directory) else []
    return max(steps) if steps else None


def refresh_after_training(workdir: str) -> bool:
    """After training in WORKDIR (finished or stopped): marks the report sections scored at an epoch other than
    the newest checkpoint's as stale (`mark_stale`). Returns whether report.md changed."""
    epoch = newest_checkpoint_epoch(workdir)
    return epoch is not None and mark_stale(workdir, epoch)


__all__ = ["eval_command", "grid_table", "mark_stale", "mark_stale_sections", "newest_checkpoint_epoch",
           "refresh_after_training", "render_section", "replace_section", "scored_epoch", "write_report"]
