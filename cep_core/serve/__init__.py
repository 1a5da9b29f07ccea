"""`cep serve`: a trained model behind an OpenAI-compatible /v1/chat/completions endpoint.

- chat_api.py: the protocol — a request checked field by field and turned into the prompt the model was trained
  on (tools rendered into the system prompt, the CEP applied), and the model's text turned into an OpenAI
  message whose `tool_calls` are parsed from the target format. Pure functions, no model.
- target.py: what a TARGET names (a training run, an exported folder, a model) and which CEP goes with it.
- engine.py: generation (transformers on any device; the evaluation's hf backend, so scores agree).
- server.py: the HTTP server (standard library), one generation at a time, one log line per request.
"""
