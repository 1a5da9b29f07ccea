"""What the model is shown: the Context Engineering Prefix and how tools are rendered into a prompt."""
