"""The evaluation job: eval sets for both tracks, generation backends (hf, openai, predictions), results.

`python -m cep_core.evaluation RUN_DIR` runs what RUN_DIR/run.toml describes; `cep eval CONFIG.toml` runs the
same in the foreground. Nothing imported here at package level is heavy: torch, transformers and peft are
imported inside the hf backend only, so the CLI and the console can use the config, sets and store modules.
"""
