"""The cyclic garbage collector, set for a process that goes on making many short-lived objects
(the server, an import)."""

import gc

# Container objects allocated (net of those freed) before a collection of the youngest generation.
# Python's default, 700, is less than one batch request holds: the bodies waiting for their commit
# were scanned again and again, promoted to the old generations, and their full collections (of
# every object of the process) took a sixth of the server's CPU time under batches.
YOUNG_GENERATION_THRESHOLD = 50_000


def settle_garbage_collector() -> None:
    """Once the process is set up: what exists now lives as long as the process, so the cyclic
    garbage collector stops scanning it (gc.freeze), and collects young objects less often."""
    gc.freeze()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, *gc.get_threshold()[1:])
