//! `rekey doctor`: being written.
