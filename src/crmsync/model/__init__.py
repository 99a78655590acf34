"""The normalized Opportunity: the one shape every rule, store and action works with."""

from crmsync.model.opportunity import (
    CANONICAL_STAGES,
    FIELDS,
    TRACKED_FIELDS,
    FieldSpec,
    Opportunity,
)

__all__ = ["CANONICAL_STAGES", "FIELDS", "TRACKED_FIELDS", "FieldSpec", "Opportunity"]
