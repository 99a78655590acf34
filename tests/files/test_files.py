"""YAML loading with positions, pydantic errors as one line, and environment substitution."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Annotated, Literal, Self

import pytest
from pydantic import Field, model_validator

from crmsync.errors import InvalidInput
from crmsync.files import (
    FieldError,
    FileModel,
    expand_env,
    load_yaml,
    parse_model,
    substitute_env,
    validate,
)
from crmsync.files.marks import Marks
from crmsync.files.messages import scrub


def write(tmp_path: Path, text: str | bytes, name: str = "file.yaml") -> Path:
    """A file in tmp_path with exactly `text`."""
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def error_of(call: object, *args: object, **kwargs: object) -> str:
    """The message of the InvalidInput `call` raises, checked to be one line."""
    with pytest.raises(InvalidInput) as info:
        call(*args, **kwargs)  # type: ignore[operator]
    message = str(info.value)
    assert "\n" not in message
    assert info.value.exit_code == 2
    return message


# --- models used by the tests -------------------------------------------------------------------


class Step(FileModel):
    """A step of a test workflow."""

    id: str
    stage: str
    days: int = 7


class EmailAction(FileModel):
    """One member of a discriminated union."""

    kind: Literal["email"]
    to: str


class TaskAction(FileModel):
    """The other member of the union."""

    kind: Literal["task"]
    subject: str
    due_days: int = 3


class Workflow(FileModel):
    """A small model shaped like the workflow files admins write."""

    name: str
    schedule: str | None = None
    mode: Literal["preview", "live"] = "preview"
    threshold: float = 0.5
    steps: list[Step] = Field(default_factory=list)
    actions: list[Annotated[EmailAction | TaskAction, Field(discriminator="kind")]] = Field(
        default_factory=list
    )

    @model_validator(mode="after")
    def _known_stages(self) -> Self:
        for i, step in enumerate(self.steps):
            if step.stage not in ("discovery", "proposal"):
                raise FieldError(f"unknown stage '{step.stage}'", "steps", i, "stage")
        return self


# --- load_yaml ----------------------------------------------------------------------------------


def test_load_yaml_gives_data_and_positions(tmp_path: Path) -> None:
    """Every key and value keeps its 1-based line and column."""
    path = write(tmp_path, "name: x\nsteps:\n  - id: a\n    stage:   proposal\n")
    data, marks = load_yaml(path)
    assert data == {"name": "x", "steps": [{"id": "a", "stage": "proposal"}]}
    assert marks.position(("name",), key=True) == (1, 1)
    assert marks.position(("name",)) == (1, 7)
    assert marks.position(("steps", 0)) == (3, 5)
    assert marks.position(("steps", 0, "stage"), key=True) == (4, 5)
    assert marks.position(("steps", 0, "stage")) == (4, 14)


def test_missing_key_points_at_the_enclosing_key(tmp_path: Path) -> None:
    """A path that is not in the file resolves to the closest key that is."""
    path = write(tmp_path, "name: x\nsteps:\n  - id: a\n")
    _, marks = load_yaml(path)
    assert marks.position(("steps", 0, "stage")) == (3, 5)
    assert marks.position(("nothing", "here")) == (1, 1)
    assert marks.where(("name",)) == f"{path}:1:7"


def test_blank_value_points_at_its_key(tmp_path: Path) -> None:
    """`key:` with nothing after it is reported at the key, not at the next line."""
    path = write(tmp_path, "a:\nb: 1\n")
    data, marks = load_yaml(path)
    assert data == {"a": None, "b": 1}
    assert marks.position(("a",)) == (1, 1)


def test_duplicate_key_is_an_error_at_the_second(tmp_path: Path) -> None:
    """PyYAML keeps the last of two equal keys silently; crmsync refuses the file."""
    path = write(tmp_path, "steps:\n  - id: a\n    stage: x\n    id: b\n")
    assert error_of(load_yaml, path) == f"{path}:4:5: steps[0].id: duplicate key (first on line 2)"


def test_merge_keys_are_not_duplicates(tmp_path: Path) -> None:
    """`<<: *anchor` merges a mapping, and the mapping's own keys win."""
    path = write(tmp_path, "base: &b\n  days: 1\n  id: x\nstep:\n  <<: *b\n  days: 2\n")
    data, marks = load_yaml(path)
    assert data["step"] == {"days": 2, "id": "x"}
    assert marks.position(("step", "days")) == (6, 9)


def test_syntax_error_keeps_yamls_position(tmp_path: Path) -> None:
    """A YAML syntax error is reported where YAML found it, with a hint."""
    path = write(tmp_path, "name: x\nsteps:\n  - id: a\n   stage: b\n")
    message = error_of(load_yaml, path)
    assert message.startswith(f"{path}:4:4: invalid YAML: expected <block end>")
    assert message.endswith("check the indentation")


def test_tab_indentation_is_explained(tmp_path: Path) -> None:
    """Tabs get a plain hint rather than only YAML's token message."""
    path = write(tmp_path, "a:\n\tb: 1\n")
    assert error_of(load_yaml, path).endswith("indent with spaces, not tabs")


@pytest.mark.parametrize("text", ["", "# only a comment\n", "\n\n"])
def test_empty_file_is_an_error(tmp_path: Path, text: str) -> None:
    """A file without a document says so, at 1:1."""
    path = write(tmp_path, text)
    assert error_of(load_yaml, path) == f"{path}:1:1: file is empty"


def test_not_utf8_names_the_byte_position(tmp_path: Path) -> None:
    """A Latin-1 file is refused at the line and column of the first bad byte."""
    path = write(tmp_path, b"a: 1\nname: caf\xe9\n")
    assert error_of(load_yaml, path) == (
        f"{path}:2:10: not UTF-8 text (byte 0xe9); save the file as UTF-8"
    )


def test_unreadable_file(tmp_path: Path) -> None:
    """A missing file is one line naming it."""
    path = tmp_path / "nope.yaml"
    assert error_of(load_yaml, path) == f"{path}: cannot read file: No such file or directory"


def test_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    """Editors on Windows may save a UTF-8 BOM; it is not part of the data."""
    path = write(tmp_path, "\ufeffname: x\n")
    assert load_yaml(path)[0] == {"name": "x"}


def test_unsafe_tags_are_refused(tmp_path: Path) -> None:
    """Only plain YAML is loaded: python/object tags are an error, not code."""
    path = write(tmp_path, "a: !!python/object/apply:os.system [true]\n")
    assert "could not determine a constructor" in error_of(load_yaml, path)


def test_several_documents_are_refused(tmp_path: Path) -> None:
    """A config file holds one document."""
    path = write(tmp_path, "a: 1\n---\nb: 2\n")
    assert error_of(load_yaml, path) == (
        f"{path}:2:1: invalid YAML: expected a single document in the stream "
        "but found another document"
    )


# --- parse_model --------------------------------------------------------------------------------


def test_parse_model_valid(tmp_path: Path) -> None:
    """A valid file becomes the model."""
    path = write(tmp_path, "name: w\nsteps:\n  - {id: a, stage: proposal}\n")
    workflow = parse_model(path, Workflow)
    assert workflow.steps[0].days == 7


def test_unknown_field_suggests_the_close_one(tmp_path: Path) -> None:
    """A typo in a key names the key's position and the field it probably meant."""
    path = write(tmp_path, "name: w\nscheduel: daily\n")
    assert error_of(parse_model, path, Workflow) == (
        f"{path}:2:1: unknown field 'scheduel' (did you mean 'schedule'?)"
    )


def test_unknown_field_without_close_match_lists_the_fields(tmp_path: Path) -> None:
    """With no close match the allowed fields are listed."""
    path = write(tmp_path, "name: w\nsteps:\n  - {id: a, stage: proposal, zzz: 1}\n")
    assert error_of(parse_model, path, Workflow) == (
        f"{path}:3:30: steps[0]: unknown field 'zzz' (expected one of: id, stage, days)"
    )


def test_unknown_field_inside_a_union_member(tmp_path: Path) -> None:
    """Suggestions come from the union member the discriminator chose."""
    path = write(tmp_path, "name: w\nactions:\n  - kind: task\n    subjet: call\n")
    assert error_of(parse_model, path, Workflow) == (
        f"{path}:4:5: actions[0]: unknown field 'subjet' (did you mean 'subject'?)"
    )


def test_typo_in_a_required_field_is_one_problem(tmp_path: Path) -> None:
    """`nmae:` is reported as the typo, not also as a missing `name`."""
    path = write(tmp_path, "nmae: w\n")
    assert error_of(parse_model, path, Workflow) == (
        f"{path}:1:1: unknown field 'nmae' (did you mean 'name'?)"
    )


def test_missing_field(tmp_path: Path) -> None:
    """A missing field is named in full and located at its parent."""
    path = write(tmp_path, "name: w\nsteps:\n  - id: a\n")
    assert error_of(parse_model, path, Workflow) == f"{path}:3:5: steps[0].stage: field required"


def test_wrong_types_in_plain_words(tmp_path: Path) -> None:
    """Type errors say what was expected and what was found."""
    path = write(tmp_path, "name: w\nthreshold: high\n")
    assert error_of(parse_model, path, Workflow) == (
        f"{path}:2:12: threshold: expected a number, got 'high'"
    )
    path = write(tmp_path, "name: w\nsteps:\n  - {id: a, stage: proposal, days: 1.5}\n")
    assert error_of(parse_model, path, Workflow) == (
        f"{path}:3:36: steps[0].days: expected a whole number, got 1.5"
    )
    path = write(tmp_path, "name: [a, b]\n")
    assert error_of(parse_model, path, Workflow) == f"{path}:1:7: name: expected text, got a list"


def test_bad_choice_lists_the_choices(tmp_path: Path) -> None:
    """A Literal field lists its values and suggests the close one."""
    path = write(tmp_path, "name: w\nmode: lve\n")
    assert error_of(parse_model, path, Workflow) == (
        f"{path}:2:7: mode: must be one of: preview, live, not 'lve' (did you mean 'live'?)"
    )


def test_bad_discriminator(tmp_path: Path) -> None:
    """An unknown union tag points at the tag's value; a missing one at the item."""
    path = write(tmp_path, "name: w\nactions:\n  - kind: sms\n")
    assert error_of(parse_model, path, Workflow) == (
        f"{path}:3:11: actions[0].kind: must be one of: email, task, not 'sms'"
    )
    path = write(tmp_path, "name: w\nactions:\n  - to: x\n")
    assert error_of(parse_model, path, Workflow) == (f"{path}:3:5: actions[0].kind: field required")


def test_field_error_points_at_its_sub_path(tmp_path: Path) -> None:
    """A model's own semantic check is reported at the value it names."""
    path = write(
        tmp_path, "name: w\nsteps:\n  - {id: a, stage: proposal}\n  - {id: b, stage: won}\n"
    )
    assert error_of(parse_model, path, Workflow) == (
        f"{path}:4:20: steps[1].stage: unknown stage 'won'"
    )


def test_first_problem_in_file_order_and_a_count(tmp_path: Path) -> None:
    """Several problems: the first one in the file, and how many more there are."""
    path = write(tmp_path, "mode: x\nname: w\nthreshold: y\n")
    assert error_of(parse_model, path, Workflow) == (
        f"{path}:1:7: mode: must be one of: preview, live, not 'x' (and 1 more problem)"
    )


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    """A list at the top is refused without a field name."""
    path = write(tmp_path, "- a\n- b\n")
    assert error_of(parse_model, path, Workflow) == (
        f"{path}:1:1: expected a mapping (key: value lines), got a list"
    )


# --- environment substitution -------------------------------------------------------------------


def test_expand_env_forms() -> None:
    """`${X}`, `${X:-default}` and `$${` work like a shell's, and a lone `$` stays."""
    env = {"USER": "ann", "EMPTY": ""}
    assert expand_env("${USER}@host", env) == "ann@host"
    assert expand_env("${MISSING:-fallback}/${USER:-x}", env) == "fallback/ann"
    assert expand_env("${EMPTY:-used}", env) == "used"
    assert expand_env("${MISSING:-}", env) == ""
    assert expand_env("pa$$word $${USER} $5", env) == "pa$$word ${USER} $5"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${NOPE}", "environment variable NOPE is not set"),
        ("${EMPTY}", "environment variable EMPTY is empty"),
        ("${OPEN", "'${' without a closing '}' (write '$${' for a literal '${')"),
        ("${not a name}", "'${not a name}' is not a variable name"),
    ],
)
def test_expand_env_errors(text: str, message: str) -> None:
    """Unset variables and malformed references are errors, not silent blanks."""
    with pytest.raises(ValueError) as info:
        expand_env(text, {"EMPTY": ""})
    assert str(info.value) == message


def test_substitute_only_string_values(tmp_path: Path) -> None:
    """Keys, numbers and booleans are left alone; strings in lists and mappings are filled in."""
    path = write(tmp_path, "${K}: ${V}\nn: 5\nb: true\nl: [x, '${V}']\n")
    data, marks = load_yaml(path)
    assert substitute_env(data, marks, env={"V": "v", "K": "k"}) == {
        "${K}": "v",
        "n": 5,
        "b": True,
        "l": ["x", "v"],
    }


def test_missing_variable_is_reported_at_its_value(tmp_path: Path) -> None:
    """The error names the variable and the value's line, column and field."""
    path = write(tmp_path, "name: w\nsteps:\n  - id: ${STEP_ID}\n")
    data, marks = load_yaml(path)
    assert error_of(substitute_env, data, marks, env={}) == (
        f"{path}:3:9: steps[0].id: environment variable STEP_ID is not set"
    )


def test_positions_survive_substitution(tmp_path: Path) -> None:
    """A value filled in from the environment is still reported at its place in the file (and
    not repeated: it may be a secret)."""
    path = write(tmp_path, "name: w\nthreshold: ${THRESHOLD}\n")
    data, marks = load_yaml(path)
    data = substitute_env(data, marks, env={"THRESHOLD": "lots"})
    assert error_of(validate, Workflow, data, marks) == (
        f"{path}:2:12: threshold: expected a number, got the value of ${{THRESHOLD}} (not shown)"
    )


def test_secret_files_are_read(tmp_path: Path) -> None:
    """`x_file: path` sets `x` to the file's text without its trailing newline."""
    (tmp_path / "secret.txt").write_text("s3cret\n\n", encoding="utf-8")
    (tmp_path / "ca.pem").write_text("PEM", encoding="utf-8")
    path = write(tmp_path, "password_file: secret.txt\nca_file: ca.pem\n")
    data, marks = load_yaml(path)
    data = substitute_env(data, marks, env={}, keep_files={"ca_file"})
    assert data == {"password": "s3cret\n", "ca_file": "ca.pem"}
    assert marks.position(("password",)) == (1, 16)
    assert marks.dotted(("password",)) == "password_file"


def test_secret_file_path_may_come_from_the_environment(tmp_path: Path) -> None:
    """The path of a secret file is substituted before it is read."""
    (tmp_path / "token").write_text("tok", encoding="utf-8")
    path = write(tmp_path, "token_file: ${DIR}/token\n")
    data, marks = load_yaml(path)
    assert substitute_env(data, marks, env={"DIR": str(tmp_path)}) == {"token": "tok"}


def test_missing_secret_file(tmp_path: Path) -> None:
    """A secret file that is not there is an error at its path's position."""
    path = write(tmp_path, "auth:\n  password_file: missing.txt\n")
    data, marks = load_yaml(path)
    assert error_of(substitute_env, data, marks, env={}) == (
        f"{path}:2:18: auth.password_file: secret file not found: missing.txt"
    )


def test_renamed_secret_is_reported_under_its_written_name(tmp_path: Path) -> None:
    """A secret read from a file that the model rejects is named as the file key."""
    (tmp_path / "n").write_text("x", encoding="utf-8")
    path = write(tmp_path, "name: w\nnmae_file: n\n")
    data, marks = load_yaml(path)
    data = substitute_env(data, marks, env={})
    assert error_of(validate, Workflow, data, marks) == (
        f"{path}:2:1: unknown field 'nmae_file' (did you mean 'name'?)"
    )


def test_substituted_values_survive_a_deep_copy(tmp_path: Path) -> None:
    """Data with values from the environment can be deep-copied and is still not echoed."""
    path = write(tmp_path, "name: w\nthreshold: ${THRESHOLD}\n")
    data, marks = load_yaml(path)
    data = copy.deepcopy(substitute_env(data, marks, env={"THRESHOLD": "lots"}))
    assert "lots" not in error_of(validate, Workflow, data, marks)


def test_a_message_names_the_variable_not_its_value(tmp_path: Path) -> None:
    """A value filled in from `${NAME}` shows in a message as `${NAME}`, as the file wrote it,
    never as its text: `file not found: ${STATE_DIR}/key.pem`."""
    data = substitute_env(
        {"key_file_path": "${STATE_DIR}/key.pem", "token": "${TOKEN}"},
        Marks(tmp_path / "c.yaml"),
        env={"STATE_DIR": "/srv/very-private", "TOKEN": "s3cr3t-token"},
    )
    message = f"file not found: {data['key_file_path']}; bad token {data['token']}"
    assert scrub(message, data) == "file not found: ${STATE_DIR}/key.pem; bad token ${TOKEN}"
