"""`python -m cep_core.training RUN_DIR`."""

import sys

from cep_core.training.job import main

sys.exit(main())
