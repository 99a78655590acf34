"""Reading the YAML files admins edit, so that every mistake is reported as one line.

`load_yaml` (reading.py) keeps the line and column of every key and value (marks.py), `validate`
(validate.py) runs a pydantic model over the data and turns every error into a line
`<file>:<line>:<col>: <field>: ...` in plain words (messages.py), all of them held by one
`Problems` error (problems.py), and
`substitute_env` (env.py) fills in `${VAR}` references and `*_file` secrets while keeping the
positions. `parse_model` is the usual combination:

    workflow = parse_model(Path("workflows/stage-gates.yaml"), Workflow)

Semantic checks in a model (an unknown stage, a duplicate id) raise `FieldError` from a
validator with the path of the offending value relative to that model, so their message points
at the right line too:

    @model_validator(mode="after")
    def _unique_ids(self) -> Self:
        seen: set[str] = set()
        for i, rule in enumerate(self.rules):
            if rule.id in seen:
                raise FieldError(f"duplicate rule id '{rule.id}'", "rules", i, "id")
            seen.add(rule.id)
        return self
"""

from crmsync.files.env import expand_env, substitute_env
from crmsync.files.marks import Loc, Marks, Position
from crmsync.files.problems import Problems
from crmsync.files.reading import load_yaml
from crmsync.files.validate import FileModel, parse_model, validate
from crmsync.model.checks import FieldError

__all__ = [
    "FieldError",
    "FileModel",
    "Loc",
    "Marks",
    "Position",
    "Problems",
    "expand_env",
    "load_yaml",
    "parse_model",
    "substitute_env",
    "validate",
]
