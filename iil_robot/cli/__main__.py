"""``python -m iil_robot.cli``: the ``iil-robot`` command."""
import sys

from iil_robot.cli.main import main

sys.exit(main())
