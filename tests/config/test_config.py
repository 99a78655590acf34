"""The service configuration: broken files give one exact line, good files load as documented."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from crmsync.config import (
    AccessTokenAuth,
    Config,
    HubSpotConnection,
    JwtBearerAuth,
    PasswordAuth,
    SalesforceConnection,
    load_config,
    redacted_url,
)
from crmsync.errors import InvalidInput
from crmsync.sandbox import Sandbox, SandboxConfig
from crmsync.sandbox.runner import HUBSPOT_TOKEN
from crmsync.sandbox.salesforce.app import Credentials

DATA = Path(__file__).parents[1] / "data" / "config"
BROKEN = sorted((DATA / "broken").glob("*.yaml"))
REPO = Path(__file__).parents[2]

MINIMAL = """\
connections:
  - name: sf-prod
    type: salesforce
    mapping: {mapping}
    auth:
      method: access_token
      instance_url: https://acme.my.salesforce.com/
      access_token: 00D-session
"""


def expected_message(path: Path) -> str:
    """The `# expect: <line>:<col>: <text>` comment on a broken file's first line."""
    first = path.read_bytes().split(b"\n", 1)[0].decode("ascii")
    assert first.startswith("# expect: "), f"{path.name} has no '# expect:' first line"
    return first.removeprefix("# expect: ")


def config_error(path: Path, env: dict[str, str] | None = None) -> str:
    """The one-line message load_config raises for `path`."""
    with pytest.raises(InvalidInput) as info:
        load_config(path, env={} if env is None else env)
    assert info.value.exit_code == 2
    return str(info.value)


def copy_config(tmp_path: Path, name: str) -> Path:
    """config/<name> copied into tmp_path/config, with stand-in mapping files next to it."""
    (tmp_path / "config").mkdir()
    shutil.copytree(DATA / "connectors", tmp_path / "connectors")
    return Path(shutil.copy(REPO / "config" / name, tmp_path / "config" / name))


def test_broken_corpus_is_large_enough() -> None:
    """The corpus covers at least 15 kinds of mistakes."""
    assert len(BROKEN) >= 15


@pytest.mark.parametrize("path", BROKEN, ids=[p.stem for p in BROKEN])
def test_broken_config(path: Path) -> None:
    """Each broken file fails with exactly the one line its first comment expects."""
    message = config_error(path)
    assert "\n" not in message
    assert message == f"{path}:{expected_message(path)}"


def test_minimal_config_defaults(tmp_path: Path) -> None:
    """A config with one connection gets the documented defaults."""
    path = tmp_path / "crmsync.yaml"
    path.write_text(MINIMAL.format(mapping=DATA / "connectors" / "salesforce.yaml"))
    config = load_config(path, env={})
    conn = config.connection("sf-prod")
    assert isinstance(conn, SalesforceConnection)
    assert isinstance(conn.auth, AccessTokenAuth)
    assert conn.auth.instance_url == "https://acme.my.salesforce.com"
    assert conn.auth.login_url == "https://login.salesforce.com"
    assert conn.api_version == "59.0"
    sync = conn.sync
    assert (sync.page_size, sync.overlap_seconds, sync.quota_share) == (2000, 300, 0.8)
    assert (sync.timeout_seconds, sync.max_retries) == (60, 5)
    assert sync.schedule is None and sync.reconcile_every is None
    assert config.store.url == f"sqlite:///{tmp_path}/var/crmsync.db"
    assert config.store.sqlite_path == tmp_path / "var" / "crmsync.db"
    assert config.source == path


def test_relative_paths_follow_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mapping, key, CA and SQLite paths are relative to the config file, not the cwd."""
    shutil.copytree(DATA / "connectors", tmp_path / "connectors")
    (tmp_path / "etc" / "keys").mkdir(parents=True)
    (tmp_path / "etc" / "keys" / "sf.pem").write_text("-----BEGIN PRIVATE KEY-----\n")
    (tmp_path / "etc" / "ca.pem").write_text("ca")
    path = tmp_path / "etc" / "crmsync.yaml"
    path.write_text(
        "store: {url: 'sqlite:///../data/crm.db'}\n"
        "connections:\n"
        "  - name: sf\n"
        "    type: salesforce\n"
        "    mapping: ../connectors/salesforce.yaml\n"
        "    auth:\n"
        "      method: jwt_bearer\n"
        "      client_id: app\n"
        "      username: u@example.com\n"
        "      private_key_file: keys/sf.pem\n"
        "      ca_file: ca.pem\n"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config(Path("../etc/crmsync.yaml"), env={})
    conn = config.connection("sf")
    assert isinstance(conn.auth, JwtBearerAuth)
    assert conn.mapping.resolve() == (tmp_path / "connectors" / "salesforce.yaml").resolve()
    assert conn.auth.private_key_file.resolve() == tmp_path / "etc" / "keys" / "sf.pem"
    assert conn.auth.ca_file is not None
    assert conn.auth.ca_file.resolve() == tmp_path / "etc" / "ca.pem"
    assert conn.auth.private_key().get_secret_value().startswith("-----BEGIN")
    assert config.store.sqlite_path is not None
    assert config.store.sqlite_path.resolve() == tmp_path / "data" / "crm.db"


def test_empty_store_section_gets_the_resolved_default(tmp_path: Path) -> None:
    """`store: {}` means the default SQLite file, next to the config."""
    path = tmp_path / "c.yaml"
    path.write_text("store: {}\n" + MINIMAL.format(mapping=DATA / "connectors" / "salesforce.yaml"))
    assert load_config(path, env={}).store.sqlite_path == tmp_path / "var" / "crmsync.db"


def test_absolute_sqlite_and_postgres_urls_are_kept(tmp_path: Path) -> None:
    """Only relative SQLite paths are rewritten."""
    mapping = DATA / "connectors" / "salesforce.yaml"
    for url in (
        "sqlite:////srv/crm.db",
        "postgresql+psycopg://crm:pw@db:5432/crm",
        "sqlite:///:memory:",
    ):
        path = tmp_path / "c.yaml"
        path.write_text(f"store: {{url: '{url}'}}\n" + MINIMAL.format(mapping=mapping))
        assert load_config(path, env={}).store.url == url


def test_env_substitution_in_config(tmp_path: Path) -> None:
    """`${VAR}`, `${VAR:-default}` and `$${` are filled in before validation."""
    path = tmp_path / "c.yaml"
    path.write_text(
        "store:\n"
        "  url: postgresql+psycopg://crm:${PGPASSWORD}@${PGHOST:-localhost}/crm\n"
        "connections:\n"
        "  - name: ${CONN_NAME:-hs-prod}\n"
        "    type: hubspot\n"
        f"    mapping: {DATA / 'connectors' / 'hubspot.yaml'}\n"
        "    auth:\n"
        "      method: private_app\n"
        "      access_token: pat-$${literal}-${TOKEN}\n"
        "    sync:\n"
        "      page_size: ${PAGE_SIZE:-50}\n"
        "      reconcile_every: ${RECONCILE:-1h30m}\n"
    )
    config = load_config(path, env={"PGPASSWORD": "pw", "TOKEN": "t0k"})
    conn = config.connection("hs-prod")
    assert isinstance(conn, HubSpotConnection)
    assert config.store.url == "postgresql+psycopg://crm:pw@localhost/crm"
    assert conn.auth.access_token.get_secret_value() == "pat-${literal}-t0k"
    assert conn.sync.page_size == 50
    assert conn.sync.reconcile_every == timedelta(hours=1, minutes=30)
    assert (conn.sync.list_limit, conn.sync.search_limit) == (50, 50)


def test_env_defaults_to_the_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without `env`, variables come from os.environ."""
    monkeypatch.setenv("CRMSYNC_TEST_TOKEN", "from-environ")
    path = tmp_path / "c.yaml"
    path.write_text(
        "connections:\n"
        "  - {name: hs, type: hubspot, mapping: "
        + str(DATA / "connectors" / "hubspot.yaml")
        + ", auth: {method: private_app, access_token: '${CRMSYNC_TEST_TOKEN}'}}\n"
    )
    conn = load_config(path).connection("hs")
    assert isinstance(conn, HubSpotConnection)
    assert conn.auth.access_token.get_secret_value() == "from-environ"
    assert (conn.sync.list_limit, conn.sync.search_limit) == (100, 200)


def test_secret_file_sets_the_secret(tmp_path: Path) -> None:
    """`password_file` reads `password` from a file relative to the config folder."""
    (tmp_path / "pw.txt").write_text("hunter2\n")
    path = tmp_path / "c.yaml"
    path.write_text(
        "connections:\n"
        "  - name: sf\n"
        "    type: salesforce\n"
        f"    mapping: {DATA / 'connectors' / 'salesforce.yaml'}\n"
        "    auth:\n"
        "      method: password\n"
        "      client_id: app\n"
        "      client_secret: 12345\n"
        "      username: u@example.com\n"
        "      password_file: pw.txt\n"
        "    api_version: 60.0\n"
    )
    conn = load_config(path, env={}).connection("sf")
    assert isinstance(conn, SalesforceConnection) and isinstance(conn.auth, PasswordAuth)
    assert conn.auth.password.get_secret_value() == "hunter2"
    assert conn.auth.client_secret.get_secret_value() == "12345"
    assert conn.api_version == "60.0"


def test_secrets_never_print(tmp_path: Path) -> None:
    """repr() and str() of a loaded config show no secret, including the store password."""
    secrets = {
        "PGPASSWORD": "pg-SECRET-1",
        "SF_SECRET": "sf-SECRET-2",
        "SF_PASSWORD": "sf-SECRET-3",
        "SF_TOKEN": "sf-SECRET-4",
        "HS_TOKEN": "hs-SECRET-5",
    }
    path = tmp_path / "c.yaml"
    path.write_text(
        "store: {url: 'postgresql://crm:${PGPASSWORD}@db/crm'}\n"
        "connections:\n"
        "  - name: sf\n"
        "    type: salesforce\n"
        f"    mapping: {DATA / 'connectors' / 'salesforce.yaml'}\n"
        "    auth:\n"
        "      method: password\n"
        "      client_id: app\n"
        "      client_secret: ${SF_SECRET}\n"
        "      username: u@example.com\n"
        "      password: ${SF_PASSWORD}\n"
        "      security_token: ${SF_TOKEN}\n"
        "  - name: hs\n"
        "    type: hubspot\n"
        f"    mapping: {DATA / 'connectors' / 'hubspot.yaml'}\n"
        "    auth: {method: private_app, access_token: '${HS_TOKEN}'}\n"
    )
    config = load_config(path, env=secrets)
    shown = repr(config) + str(config) + repr(config.connections) + str(config.store)
    for secret in secrets.values():
        assert secret not in shown
    assert "postgresql://crm:***@db/crm" in shown


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql+psycopg://crm:pw@db/crm", "postgresql+psycopg://crm:***@db/crm"),
        ("postgresql://crm:p@ss/w:rd@db:5432/crm?x=1", "postgresql://crm:***@db:5432/crm?x=1"),
        ("postgresql://crm@db/crm", "postgresql://crm@db/crm"),
        ("sqlite:////srv/crm.db", "sqlite:////srv/crm.db"),
        ("not a url", "not a url"),
    ],
)
def test_redacted_url(url: str, shown: str) -> None:
    """Only the password part of a URL is hidden."""
    assert redacted_url(url) == shown


def test_unknown_connection_lists_the_known(tmp_path: Path) -> None:
    """Asking for a connection by a wrong name lists the right ones."""
    path = tmp_path / "c.yaml"
    path.write_text(MINIMAL.format(mapping=DATA / "connectors" / "salesforce.yaml"))
    config = load_config(path, env={})
    with pytest.raises(InvalidInput) as info:
        config.connection("sf-prd")
    assert str(info.value) == f"{path}: no connection named 'sf-prd' (known: sf-prod)"


def test_config_built_in_python_skips_file_checks() -> None:
    """Code and tests may build a Config directly; paths are then taken as given."""
    config = Config.model_validate(
        {
            "connections": [
                {
                    "name": "hs",
                    "type": "hubspot",
                    "mapping": "nowhere.yaml",
                    "auth": {"method": "private_app", "access_token": "t"},
                }
            ]
        }
    )
    assert config.connections[0].mapping == Path("nowhere.yaml")
    assert config.store.url == "sqlite:///var/crmsync.db"


def test_example_config_loads(tmp_path: Path) -> None:
    """config/crmsync.yaml, the commented example, is a valid config."""
    path = copy_config(tmp_path, "crmsync.yaml")
    (tmp_path / "config" / "secrets").mkdir()
    (tmp_path / "config" / "secrets" / "salesforce-jwt.pem").write_text("PEM")
    env = {
        "SALESFORCE_CLIENT_ID": "3MVG9-example",
        "SALESFORCE_USERNAME": "integration@acme.example",
        "HUBSPOT_TOKEN": "pat-na1-example",
    }
    config = load_config(path, env=env)
    assert [c.name for c in config.connections] == ["sf-prod", "hs-prod"]
    sf = config.connection("sf-prod")
    assert isinstance(sf, SalesforceConnection) and isinstance(sf.auth, JwtBearerAuth)
    assert sf.auth.client_id == "3MVG9-example"
    assert sf.sync.reconcile_every == timedelta(hours=24)
    assert config.store.sqlite_path == tmp_path / "config" / "var" / "crmsync.db"


def test_example_config_needs_its_variables(tmp_path: Path) -> None:
    """Without the environment the example names the first variable it needs."""
    path = copy_config(tmp_path, "crmsync.yaml")
    assert "environment variable SALESFORCE_CLIENT_ID is not set" in config_error(path)


def test_sandbox_config_matches_a_running_sandbox(tmp_path: Path) -> None:
    """config/sandbox.yaml, with the demo's variables set, points at the sandbox's URLs,
    CA, key and credentials."""
    path = copy_config(tmp_path, "sandbox.yaml")
    sb = Sandbox(SandboxConfig(opportunities=0, state_dir=tmp_path / "state")).start()
    try:
        env = {
            "CRMSYNC_SANDBOX_SF_URL": sb.salesforce.url,
            "CRMSYNC_SANDBOX_HS_URL": sb.hubspot.url,
            "CRMSYNC_SANDBOX_CA": str(sb.ca_path),
            "CRMSYNC_SANDBOX_DIR": str(sb.state_dir),
        }
        config = load_config(path, env=env)
        sf, hs = config.connections
        assert isinstance(sf, SalesforceConnection) and isinstance(sf.auth, JwtBearerAuth)
        assert isinstance(hs, HubSpotConnection)
        creds = Credentials()
        assert sf.auth.login_url == sf.auth.instance_url == sb.salesforce.url
        assert (sf.auth.client_id, sf.auth.username) == (creds.client_id, creds.username)
        assert sf.auth.private_key_file == sb.salesforce.jwt_private_key_path
        assert sf.auth.ca_file == hs.auth.ca_file == sb.ca_path
        assert hs.auth.base_url == sb.hubspot.url
        assert hs.auth.access_token.get_secret_value() == HUBSPOT_TOKEN
        assert config.store.sqlite_path == sb.state_dir / "crmsync.db"
    finally:
        sb.stop()


def test_the_workflow_folder_prints_without_detours(tmp_path: Path) -> None:
    """The default `../workflows` beside the config, and a relative `workflows:`, are
    normalized (`workflows`, not `config/../workflows`) wherever they are printed."""
    (tmp_path / "config").mkdir()
    (tmp_path / "workflows").mkdir()
    path = tmp_path / "config" / "crmsync.yaml"
    text = (
        "store: {url: 'sqlite:///crm.db'}\n"
        "connections:\n"
        "  - name: hs\n"
        "    type: hubspot\n"
        f"    mapping: {DATA / 'connectors' / 'hubspot.yaml'}\n"
        "    auth: {method: private_app, access_token: pat-x}\n"
    )
    path.write_text(text, encoding="utf-8")
    assert load_config(path).workflow_dir() == tmp_path / "workflows"
    path.write_text(text + "workflows: ./../workflows\n", encoding="utf-8")
    assert load_config(path).workflow_dir() == tmp_path / "workflows"
