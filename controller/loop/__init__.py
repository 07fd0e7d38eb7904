"""The control loop: assess, decide, cycle, retrain, and the registry's ledger."""
