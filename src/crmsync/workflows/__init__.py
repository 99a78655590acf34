"""Workflow rules over the synced pipeline: derived fields, rule evaluation, actions."""
