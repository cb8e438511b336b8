"""The one exception for mistakes a user can fix: the CLI prints its message on one line and exits 2."""


class MakemoreError(Exception):
    """A problem with the user's input, worded as the problem followed by the fix."""

    @property
    def problem(self):
        """The message without its fix (the part before the first ';'), for a message that gives its own fix."""
        return str(self).split(";")[0]
