"""Recorded GPU hosts shipped with the package (the console demo mode plays healthy-8x-h100.json)."""
