"""Load tests with Locust as a library: bounded, self-stopping, gated on raw per-request timings.

Run them with ``python -m loadtests <suite> ...`` (see loadtests/README.md). Importing this package does not
import Locust (and so does not monkey-patch anything); ``__main__`` does.
"""
