"""The error a model's own checks raise to point at a value below that model.

Kept here, with no crmsync import, so the mapping and other models can raise it; the file
reader (`crmsync.files`) turns it into `<file>:<line>:<col>: <field>: <message>`.
"""

from __future__ import annotations


class FieldError(ValueError):
    """Raised from a model's validator to report a problem at a path below that model.

    `path` is relative to the model whose validator raises it; `key=True` points at the key
    rather than its value (for a misplaced or duplicate key).
    """

    def __init__(self, message: str, *path: str | int, key: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.path: tuple[str | int, ...] = path
        self.key = key
