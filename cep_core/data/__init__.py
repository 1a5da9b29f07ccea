"""Dataset loading and conversion to chat messages (Hermes, json-mode, BFCL), CEP application, splitting."""
