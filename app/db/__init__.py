"""Database access: engine and sessions, the declarative base, the embedded Postgres."""
