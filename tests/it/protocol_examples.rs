//! Tests: protocol_examples.
