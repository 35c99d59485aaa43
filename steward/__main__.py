import sys

from steward.cmd.main import main

sys.exit(main())
