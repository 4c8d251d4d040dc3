//! Integration tests: supervisor (filled in by its issue).
