"""The `peers` benchmark: our queue against pgqueuer, procrastinate (PostgreSQL) and huey
(SQLite), each installed in its own virtual environment under bench/ (docs/performance.md)."""
