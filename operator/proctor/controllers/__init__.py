"""Controllers: gather observed state (indexes, the store, a few API reads), call the pure functions in
`proctor.reconcile`, and apply the result. kopf handlers in `proctor.handlers` only call into these."""
