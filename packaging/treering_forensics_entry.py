"""The bundle's entry point: `treering-forensics` with no subcommand opens the window, with one it is the CLI
(forensics_app.cli.main, the same function as the wheel's console script)."""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()        # no-op unless a library spawns workers in a frozen Windows build
    from forensics_app.cli import main

    sys.exit(main())
