//! The pure failover state machine. Placeholder: the supervisor issue fills this in.
