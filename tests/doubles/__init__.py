"""Test doubles: stand-ins for external services that tests and benchmarks need on loopback."""
