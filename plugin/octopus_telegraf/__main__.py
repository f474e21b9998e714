import sys

from octopus_telegraf.service.cli import main

sys.exit(main())
