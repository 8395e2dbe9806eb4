import sys

from hwnas.device_agent.cli import main

sys.exit(main())
