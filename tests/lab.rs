//! Integration tests: lab (filled in by its issue).
