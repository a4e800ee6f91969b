import sys

from mattestudio.cli.main import main

sys.exit(main())
