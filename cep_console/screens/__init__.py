"""The console's screens: one per mode (gpus, runs, evals, traces) plus modals (launch, help, details)."""
