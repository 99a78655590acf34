"""The `service:` block of the config: defaults, and mistakes reported at their line."""

from __future__ import annotations

from pathlib import Path

import pytest

from crmsync.config import load_config
from crmsync.config.service import ServiceSettings
from crmsync.errors import InvalidInput

ROOT = Path(__file__).resolve().parents[2]

BASE = """\
connections:
  - name: sf
    type: salesforce
    mapping: {mapping}
    auth: {{method: access_token, instance_url: "https://x.my.salesforce.com", access_token: t}}
"""


def _config(tmp_path: Path, service: str) -> Path:
    path = tmp_path / "crmsync.yaml"
    path.write_text(
        BASE.format(mapping=ROOT / "connectors" / "salesforce.yaml") + service, encoding="utf-8"
    )
    return path


def test_defaults_without_a_service_block(tmp_path: Path) -> None:
    """A config without `service:` gets the documented defaults."""
    service = load_config(_config(tmp_path, "")).service
    assert service == ServiceSettings()
    assert (service.http.host, service.http.port) == ("127.0.0.1", 9464)
    assert service.lease_seconds == 30
    assert service.sync_interval_seconds is None and service.workflow_interval_seconds is None


def test_values_are_read(tmp_path: Path) -> None:
    """Every key of the block is read from the file."""
    text = (
        "service:\n"
        "  http: {host: 0.0.0.0, port: 0}\n"
        "  timezone: Europe/Berlin\n"
        "  lease_seconds: 5\n"
        "  sync_interval_seconds: 2\n"
        "  workflow_interval_seconds: 3\n"
        "  stale_after_intervals: 4\n"
    )
    service = load_config(_config(tmp_path, text)).service
    assert (service.http.host, service.http.port) == ("0.0.0.0", 0)
    assert service.timezone == "Europe/Berlin"
    assert (service.lease_seconds, service.sync_interval_seconds) == (5, 2)
    assert (service.workflow_interval_seconds, service.stale_after_intervals) == (3, 4)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("service:\n  lease_seconds: 0\n", ":7:18: service.lease_seconds: must be at least 1"),
        ("service:\n  http: {port: 70000}\n", ":7:16: service.http.port: must be at most 65535"),
        ("service:\n  timezone: Mars/Olympus\n", ":7:13: service.timezone: unknown timezone"),
        ("service:\n  leas_seconds: 3\n", ":7:3: service: unknown field 'leas_seconds' (did you"),
        (
            "service:\n  sync_interval_seconds: -1\n",
            ":7:26: service.sync_interval_seconds: must be greater than 0",
        ),
    ],
)
def test_mistakes_name_the_line(tmp_path: Path, text: str, expected: str) -> None:
    """A wrong value or unknown key is one line naming the file, line, column and key."""
    path = _config(tmp_path, text)
    with pytest.raises(InvalidInput) as e:
        load_config(path)
    assert f"{path}{expected}" in str(e.value)
