//! Configuration: TOML fragments merged in order into one validated `Settings`.
