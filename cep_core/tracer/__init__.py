"""The workflow tracer: capture LLM calls from production code, browse them, export them as training data.

`from cep_core.tracer import WorkflowTracer` imports only the standard library, sqlite-utils and cep_core's
light modules (never torch, transformers or datasets), so it can live inside any agent process.
"""

from cep_core.tracer.api import TraceCaptureError, TracedCall, WorkflowTracer
from cep_core.tracer.store import TraceRow, TraceStore
from cep_core.tracer.thresholds import DEFAULT_THRESHOLD, AgentKey

__all__ = [
    "DEFAULT_THRESHOLD",
    "AgentKey",
    "TraceCaptureError",
    "TraceRow",
    "TraceStore",
    "TracedCall",
    "WorkflowTracer",
]
