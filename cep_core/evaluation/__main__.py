"""`python -m cep_core.evaluation RUN_DIR`."""

import sys

from cep_core.evaluation.job import main

sys.exit(main())
