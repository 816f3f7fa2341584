"""empiricist.monitor: evaluations on every checkpoint as it lands, and pre-committed thresholds (issue 19).

- ``policy``: the threshold policy file, its lock (hash, signer, time) and the crossing rule;
- ``watch``: ``Watcher.poll`` evaluates new checkpoints through the eval runner, records their metrics
  with intervals, raises alerts with their evidence and performs the action (record, alert, stop);
- ``live``: the terminal view and the HTML page that ``empiricist monitor`` refreshes.
"""

from __future__ import annotations

from empiricist.monitor.policy import Policy, Threshold, load_policy, lock_policy, read_policy
from empiricist.monitor.watch import Watcher, checkpoints, suite_done

__all__ = ["Policy", "Threshold", "Watcher", "checkpoints", "load_policy", "lock_policy", "read_policy",
           "suite_done"]
