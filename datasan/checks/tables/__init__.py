"""What the table rules (DS1xx) mean, one module per concern, independent of file formats.

* :mod:`.target`: which column is the target, its profile and plan (DS112, DS115)
* :mod:`.values`: row checks of numeric features (DS101, DS105, DS109, DS113)
* :mod:`.labels`: row checks of the target (DS102, DS103, DS104)
* :mod:`.rows`: both row checks over one batch
* :mod:`.columns`: one finding per column from merged statistics (DS106-DS108,
  DS114, DS116-DS118)
* :mod:`.duplicates`: duplicate and conflicting rows from row hashes (DS110, DS111)

The table source (``datasan/sources/tables``) reads the files and hands these
functions typed facts.
"""
