//! Activating a profile: the only way the active profile ever changes (DESIGN.md 2).
//! Placeholder: the foundation issue fills this in.
