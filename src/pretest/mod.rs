//! Non-disruptive pre-tests of resting profiles (DESIGN.md section 5). Placeholder: the
//! health issue fills this in.
