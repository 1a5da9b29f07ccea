"""`python -m cep_core.cli` is `cep`."""

import sys

from cep_core.cli import main

sys.exit(main())
