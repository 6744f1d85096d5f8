"""The kit's one error type: raised in the core and the funnel, turned into an exit at the task boundary."""

from __future__ import annotations


class KitError(Exception):
    """A problem the user can act on: what went wrong, and the fix.

    ``evidence`` carries what a command left behind (stderr tail, exit code) so the
    boundary can show it; ``code`` is the process exit status to use.
    """

    def __init__(self, message: str, *, hint: str = "", evidence: str = "", code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.evidence = evidence
        self.code = code

    def render(self) -> str:
        parts = [f"error: {self.message}"]
        if self.evidence:
            parts.append("\n".join("  | " + line for line in self.evidence.rstrip().splitlines()))
        if self.hint:
            parts.append(f"  fix: {self.hint}")
        return "\n".join(parts)


def tail(text: str, lines: int = 15) -> str:
    """The last ``lines`` non-empty lines of a command's output."""
    kept = [line for line in text.rstrip().splitlines() if line.strip()]
    return "\n".join(kept[-lines:])
