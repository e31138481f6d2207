"""``python -m harness.demo [--leg NAME ...] [--keep-running]``: see :mod:`harness.demo.run`."""

from harness.demo.run import main

raise SystemExit(main())
