"""Limits every domain's queries keep to, whichever backend runs them.

Apart from :mod:`digest.db.dialects`, which imports the PostgreSQL driver: the
ranking reads rows by id everywhere and need not pay for that import.
"""

# Ids per ``IN (...)`` list when rows are read for many ids at once: one bound
# parameter each, well within SQLite's limit (32,766 since 3.32) and PostgreSQL's
# (65,535), and few enough statements for a batch of readers or papers.
IN_LIST_CHUNK = 5000
