"""Where in the submission a finding points (no torch: the reports and `--help` import it)."""

from __future__ import annotations

from dataclasses import dataclass

from grader.core.i18n import _


@dataclass
class Location:
    """Where in the submission a finding points: 1-based cell number and line within the cell."""

    cell: int | None = None
    line: int | None = None

    def __str__(self) -> str:
        if self.cell is None:
            return ""
        if self.line:
            return _("cell {cell}, line {line}").format(cell=self.cell, line=self.line)
        return _("cell {cell}").format(cell=self.cell)
