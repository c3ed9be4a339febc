//! Tests: protocol_hostile.
