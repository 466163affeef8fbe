"""Muster: runs `muster ...` on the test database, as an operator would (flaskr's `runner`)."""

from __future__ import annotations

from click.testing import CliRunner, Result

from muster.cli import main


class Muster:
    """The CLI in-process, with MUSTER_DATABASE_URL pointing at the test database."""

    def __init__(self, database_url: str) -> None:
        self.runner = CliRunner(env={"MUSTER_DATABASE_URL": database_url})

    def __call__(self, *args: str) -> Result:
        return self.runner.invoke(main, list(args), catch_exceptions=False)

    def ok(self, *args: str) -> Result:
        """Run a command that must succeed."""
        result = self(*args)
        assert result.exit_code == 0, (result.stdout, result.stderr)
        return result

    def fails(self, *args: str) -> str:
        """Run a command that must fail cleanly; return its one-line error."""
        result = self(*args)
        assert result.exit_code == 1, (result.stdout, result.stderr)
        assert result.stderr.startswith("error: ")
        assert "Traceback" not in result.output
        return result.stderr
