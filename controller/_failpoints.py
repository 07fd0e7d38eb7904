"""Named points where the process can be killed or paused on purpose, to test crash and
outage recovery.

``DRIFTCTL_FAILPOINT=after-register driftctl retrain ...`` sends SIGKILL to the process when
it reaches that point (as etcd's gofail failpoints do); ``after-register:stop`` sends it
SIGSTOP instead, the first time it gets there, so that a test can act (kill the tracking
server, say) before it sends SIGCONT. Unset, a failpoint costs one lookup.

    after-candidate    the challenger's run is complete, not yet registered
    after-register     the model version exists, without description, tags or alias
    after-decision     a promotion or rollback is in the ledger, no alias has moved
    between-aliases    ``previous-champion`` has moved, ``champion`` not yet
    started-<kind>     a run of that kind (monitor, retrain, ...) was created, empty
    artifact-upload    an artifact (JSON or text) is about to be uploaded
"""

from __future__ import annotations

import os
import signal

VARIABLE = "DRIFTCTL_FAILPOINT"
_stopped: set[str] = set()


def failpoint(name: str) -> None:
    value = os.environ.get(VARIABLE)
    if value == name:
        os.kill(os.getpid(), signal.SIGKILL)
    elif value == name + ":stop" and name not in _stopped:
        _stopped.add(name)
        os.kill(os.getpid(), signal.SIGSTOP)
