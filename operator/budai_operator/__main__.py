"""`python -m budai_operator` is `budai-operator`."""

from .cli import main

raise SystemExit(main())
