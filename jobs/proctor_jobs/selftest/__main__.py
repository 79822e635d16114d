import sys

from proctor_jobs.selftest.cli import main

sys.exit(main())
