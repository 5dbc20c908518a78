"""The test suite; each folder holds one domain's tests (see docs/architecture.md)."""
