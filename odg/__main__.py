"""`python -m odg` is the `odg` command."""
import sys

from odg.pipelines.cli import main

sys.exit(main())
