"""Small reusable widgets of the console: metric bars, GPU cards, the followed log."""
