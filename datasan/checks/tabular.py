"""Former home of the table rules, now in :mod:`datasan.checks.tables`.

Kept only so that code written against the old module keeps importing: it
re-exports the helpers other source kinds use and defines no rule.
"""

from __future__ import annotations

from datasan.checks.tables.duplicates import duplicate_findings
from datasan.checks.tables.target import TARGET_MISSING_TOKENS, distant_class_ids, is_missing_target_text

__all__ = ["TARGET_MISSING_TOKENS", "distant_class_ids", "duplicate_findings", "is_missing_target_text"]
