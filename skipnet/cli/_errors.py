"""The failure a command reports with its own exit status (other failures are exceptions with status 2)."""


class CommandFailed(Exception):
    """A command ran but failed (e.g. training diverged): ``str(exc)`` is the one-line message, ``code``
    the exit status."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code
