"""`python -m pipelines` is the `odg` command."""
import sys

from .cli import main

sys.exit(main())
