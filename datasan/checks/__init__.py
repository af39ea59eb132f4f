"""What each rule means: one module per family of rules.

Every module listed in :data:`FAMILIES` defines its rules as module-level
:class:`~datasan.checks.rule.Rule` constants (named after the rule, e.g.
``NON_FINITE_VALUE`` for ``non-finite-value``) beside the functions that emit
them.  :mod:`datasan.rules` collects them into the one table of codes that
``datasan rules``, ``datasan rule CODE`` and the README read.  Adding a rule
family = one module here + one line in :data:`FAMILIES`.

These modules import nothing heavy at load time: ``datasan rules`` and
``datasan --help`` stay instant.
"""

FAMILIES: tuple[str, ...] = (
    "datasan.checks.files",  # DS0xx: files that cannot be read, names, folders, internal errors
    "datasan.checks.tables.target",  # DS112, DS115: which column is the target
    "datasan.checks.tables.values",  # DS101, DS105, DS109, DS113: feature values
    "datasan.checks.tables.labels",  # DS102-DS104: targets
    "datasan.checks.tables.columns",  # DS106-DS108, DS114, DS116-DS118: whole columns
    "datasan.checks.tables.duplicates",  # DS110, DS111: repeated rows
    "datasan.checks.images",  # DS201-DS210 images, DS301-DS307 image labels
    "datasan.checks.image_duplicates",  # DS211-DS213: near duplicates, leakage across splits
    "datasan.checks.image_quality",  # DS214-DS218: blur, exposure, information, gray as RGB
    "datasan.checks.boxes",  # DS320-DS339: COCO and YOLO boxes
    "datasan.checks.probe",  # DS4xx: the probe network
    "datasan.checks.drift",  # DS501-DS519: drift against a baseline scan's statistics
)
