//! Tests: protocol_roundtrip.
