"""`python -m console` is the same as `perpdesk`."""
from console.cli import main

raise SystemExit(main())
