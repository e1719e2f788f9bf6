"""The errors vsim reports to users: one clear message naming the file, the field and the fix."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Problem", "ScenarioError", "VsimError"]


class VsimError(Exception):
    """Base of every error that the CLI shows as a message (exit status 2), never as a traceback."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: where (file, dotted path, line) and what to do."""

    message: str
    path: str = ""  # dotted path inside the file, e.g. "hosts.0.ram"
    line: int | None = None
    hint: str = ""

    def render(self, file: str | None) -> str:
        where = file or "<scenario>"
        if self.line is not None:
            where += f":{self.line}"
        field_part = f" {self.path}:" if self.path else ""
        text = f"{where}:{field_part} {self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return text


@dataclass
class ScenarioError(VsimError):
    """A scenario (or a file it points at) that cannot be run, with every problem found."""

    problems: list[Problem]
    file: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        # The same problem found through several paths (a workload every VM group uses) once.
        lines = list(dict.fromkeys(p.render(self.file) for p in self.problems))
        if len(lines) == 1:
            return lines[0]
        return f"{len(lines)} problems in {self.file or 'the scenario'}:\n" + "\n".join(
            "  " + line for line in lines
        )
