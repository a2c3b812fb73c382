"""Entry script of the frozen MedView app (PyInstaller runs this as __main__)."""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from medview.cli import main

    sys.exit(main())
