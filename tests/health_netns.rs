//! Integration tests: health_netns (filled in by its issue).
