import sys

from pyro_videossm.cli import main

sys.exit(main())
