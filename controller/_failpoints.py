"""Named points where the process can be killed on purpose, to test crash recovery.

``DRIFTCTL_FAILPOINT=after-register driftctl retrain ...`` sends SIGKILL to the process when
it reaches that point (as etcd's gofail failpoints do). Unset, a failpoint costs one lookup.

    after-candidate   the challenger's run is complete, not yet registered
    after-register    the model version exists, without description, tags or alias
    after-decision    a promotion or rollback is in the ledger, no alias has moved
    between-aliases   ``previous-champion`` has moved, ``champion`` not yet
"""

from __future__ import annotations

import os
import signal

VARIABLE = "DRIFTCTL_FAILPOINT"


def failpoint(name: str) -> None:
    if os.environ.get(VARIABLE) == name:
        os.kill(os.getpid(), signal.SIGKILL)
