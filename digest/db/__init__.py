"""The database: engines, the unit of work, backend dialects, the schema and its migrations."""
