"""GPU status, health checks and Xid detection.

Modules: `nvml` (the one NVML query function, init-error diagnosis, the NVML source), `sample` (the data
shapes and the Sampler), `replay` (recorded sources), `health` (verdicts), `xid_catalog` (what each Xid
means), `kernel_log` (parsing), `watch` (following logs and NVML events), `store` (events in cep.db),
`preflight` (launch checks). Nothing here imports torch; NVML is only loaded when a sample is taken.
"""
