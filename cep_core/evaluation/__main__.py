import sys

from cep_core.evaluation.job import main

sys.exit(main())
