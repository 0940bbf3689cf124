"""Everything the Lambda functions run; app.py only wires it to routes, queues and schedules."""

import gc

# A cold start creates ~400k objects that live as long as the instance (modules, pydantic models,
# botocore's service data). With Python's default thresholds (700, 10, 10) the cyclic GC rescans
# them in dozens of older-generation collections while they are being created: ~12 ms of a cold
# callback (bench/cold_start.py, docs/performance.md). Requests allocate little and rarely make
# cycles: young collections every 10,000 allocations stay short, and the older generations are
# left for long-lived instances.
gc.set_threshold(10_000, 50, 50)
