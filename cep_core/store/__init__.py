"""Where the product keeps its state: the home folder's paths, cep.db and its migrations, private (0600/0700)
files, atomic writes and TOML files read with their line numbers."""
