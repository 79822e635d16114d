"""Pure reconciliation logic: observed state in, desired children and status out (no I/O)."""
