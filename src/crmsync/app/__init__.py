"""The application layer: orchestration over connectors, store, workflows and actions.

`factory` builds a connector for a configured connection, `sync` runs one (connection, object)
sync, `runner` syncs every connection of a config, `plan` evaluates (workflow, connection) pairs,
`apply` plans, records and sends write-back. The service and the CLI call these; nothing below
calls them.
"""
