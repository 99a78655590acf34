"""The service configuration (`config/crmsync.yaml`): where the store is and which CRMs to sync.

`load_config(path)` reads the file, fills in `${VAR}` references and `*_file` secrets, resolves
relative paths against the file's folder and validates it; a mistake is one `InvalidInput` line
naming the file, line, column and field. Secrets are `SecretStr`, so they never print.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping as AnyMapping
from pathlib import Path

from crmsync.config.schema import PATH_KEYS, Config
from crmsync.files import load_yaml, parse_model, substitute_env, validate
from crmsync.model.mapping import Mapping


def load_config(path: Path, *, env: AnyMapping[str, str] | None = None) -> Config:
    """Read, substitute (`env` defaults to the process environment) and validate a config file."""
    data, marks = load_yaml(path)
    base = path.parent.absolute()
    data = substitute_env(
        data, marks, env=os.environ if env is None else env, base_dir=base, keep_files=PATH_KEYS
    )
    config = validate(Config, data, marks, context={"base_dir": base})
    config.loaded_from(path)
    return config


def load_mapping(path: Path) -> Mapping:
    """Read and check a mapping file (`connectors/*.yaml`); errors name the file, line and field.
    A file is parsed once per version (its size, time and inode; mappings are frozen): a worker
    runs a workflow per connection every few minutes, and re-reading every connection's mapping
    for each run was most of a small run's time."""
    try:
        st = path.stat()
    except OSError:
        return _parse_mapping(path)  # parse_model names the file and why it cannot be read
    return _parsed(path, st.st_mtime_ns, st.st_size, st.st_ino)


@functools.lru_cache(maxsize=512)
def _parsed(path: Path, _mtime_ns: int, _size: int, _inode: int) -> Mapping:
    return _parse_mapping(path)


def _parse_mapping(path: Path) -> Mapping:
    mapping = parse_model(path, Mapping)
    return mapping.model_copy(update={"path": path})
