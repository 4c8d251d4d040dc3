//! Integration tests: profiles (filled in by its issue).
