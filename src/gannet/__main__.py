"""python -m gannet"""
import sys

from .cli import main

sys.exit(main())
