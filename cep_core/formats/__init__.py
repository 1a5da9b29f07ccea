"""What model output looks like: tolerant JSON, tool-call syntaxes, structured replies, and the error taxonomy
every scorer names its findings with. Parsers here never raise on any string."""
