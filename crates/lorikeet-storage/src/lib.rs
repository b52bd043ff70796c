//! Storage: one trait, a Postgres and a SQLite implementation. (Being built: issue 5.)
