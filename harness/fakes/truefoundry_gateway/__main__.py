"""``python -m harness.fakes.truefoundry_gateway --port P --llm-url URL``: serve the simulator on loopback."""

from harness.fakes.truefoundry_gateway.gateway import main

raise SystemExit(main())
