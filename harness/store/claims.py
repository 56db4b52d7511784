"""Which process trains which run, decided in the store itself: a claim (a RUNNING child run tagged
with its owner and a heartbeat), the queue of an identity's claims (Lamport's bakery, no clock
decides), stale claims of dead processes, and the repair of what a crash left RUNNING. Two sweeps
(two commands, two machines on one server) never train one seed twice, nor count it twice."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from harness.identity import RunIdentity
from harness.store.schema import (
    KIND_CHILD,
    KIND_PARENT,
    TAG_CHOOSING,
    TAG_CLAIM,
    TAG_ERROR,
    TAG_GROUP,
    TAG_HEARTBEAT,
    TAG_IDENTITY,
    TAG_KIND,
    TAG_TICKET,
)

if TYPE_CHECKING:
    from harness.store.tracking import DataInput

HEARTBEAT_SECONDS = 30.0  # how often a sweep refreshes the claims of its running runs


CLAIM_TIMEOUT_SECONDS = 5 * HEARTBEAT_SECONDS  # a claim not refreshed for this long is a dead process's


QUEUE_POLL_SECONDS = 0.2  # how often a claimant looks again while a rival is still taking its ticket


def this_owner() -> str:
    """How this process names itself in a claim: host and pid."""
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"


def claim_is_stale(tags: dict[str, str], now: float | None = None) -> bool:
    """A RUNNING child's claim no longer holds: its heartbeat is older than the timeout, its
    supervising process on this host is gone, or it has no claim at all (a run left RUNNING by a
    process that died, or by a release without claims)."""
    import socket

    owner, beat = tags.get(TAG_CLAIM), tags.get(TAG_HEARTBEAT)
    if owner is None or beat is None:
        return True
    now = time.time() if now is None else now
    if now - float(beat) > CLAIM_TIMEOUT_SECONDS:
        return True
    host, _, pid = owner.rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
    return False


def claim_tags(owner: str) -> dict[str, str]:
    """A new claim: its owner, a first heartbeat, and "taking a ticket" (see ``Tracker._queue``)."""
    return {TAG_CLAIM: owner, TAG_HEARTBEAT: f"{time.time():.0f}", TAG_CHOOSING: "1"}


def claim_ticket(run) -> int:
    """A claim's ticket in its queue; 0 for a claim made before tickets (it queues first)."""
    value = run.data.tags.get(TAG_TICKET, "")
    return int(value) if value.isdigit() else 0


def choosing(run) -> bool:
    return run.data.tags.get(TAG_CHOOSING) == "1"


def queue_position(run) -> tuple[int, str]:
    return claim_ticket(run), run.info.run_id


def one_per_identity(runs: list) -> list:
    """At most one run per identity (the earliest to end): a store written by two sweeps that
    raced (or by a release without claims) never counts a seed twice."""
    kept: dict[str, Any] = {}
    for run in sorted(runs, key=lambda r: (r.info.end_time or 0, r.info.run_id)):
        kept.setdefault(run.data.tags.get(TAG_IDENTITY) or run.info.run_id, run)
    return list(kept.values())


class Claims:
    """The claim methods of ``harness.store.tracking.Tracker`` (mixed into it: they use its
    ``client``, ``search``, ``child_run``, ``fail`` and ``update_parent``)."""

    def claim(
        self,
        identity: RunIdentity,
        parent_run_id: str,
        owner: str,
        *,
        description: str = "",
        data: DataInput | None = None,
    ) -> tuple[str | None, str]:
        """Claim ``identity`` in the store itself, so that two sweeps (two commands, two machines
        on one server) never train it twice: create a RUNNING child tagged with ``owner``, take a
        place in the identity's queue (``_queue``), and look at every run of that identity. It
        is ours if none FINISHED and ours is first among the live claims. No clock decides: a
        claim that arrives later always queues behind one already there, whatever its machine's
        clock says. Stale claims of dead processes are marked KILLED on the way. Returns
        (run id, "") when won, else (None, why) after closing (KILLED, with why) and deleting
        the run this call created."""
        run_id = self.child_run(identity, parent_run_id, owner=owner, description=description, data=data)
        query = f"tags.`{TAG_KIND}` = '{KIND_CHILD}' and tags.`{TAG_IDENTITY}` = '{identity.identity}'"
        finished: list = []

        def live_claims() -> list:
            live = []
            for run in self.search(query):
                if run.info.run_id != run_id and run.info.status == "FINISHED":
                    finished.append(run)
                elif run.info.status != "RUNNING":
                    continue
                elif run.info.run_id != run_id and claim_is_stale(run.data.tags):
                    self.fail(run.info.run_id, "its claim went stale: the process that ran it is gone", status="KILLED")
                else:
                    live.append(run)
            return live

        live = self._queue(run_id, live_claims)
        if finished:
            why = f"already finished (run {finished[0].info.run_id})"
        else:
            winner = min(live, key=queue_position)
            if winner.info.run_id == run_id:
                return run_id, ""
            why = f"running in another sweep ({winner.data.tags.get(TAG_CLAIM, 'unknown owner')})"
        self._close_lost(run_id, f"lost its claim: {why}")
        return None, why

    def _queue(self, run_id: str, rivals: Callable[[], list]) -> list:
        """Lamport's bakery, with the store as its shared memory. ``run_id`` was created with
        TAG_CHOOSING "1"; it takes a ticket one above every ticket ``rivals()`` shows, writes it
        (and TAG_CHOOSING "0") in one call, then waits until no rival is still taking its own.
        Returns ``rivals()`` as then seen, ``run_id`` among them: the smallest (ticket, run id)
        is first. Only the order of the store's writes and reads decides: a rival that arrives
        later reads this ticket and takes a larger one; two that take theirs at once may tie, and
        the run id decides. A rival that died while taking its ticket drops out of ``rivals()``
        once its claim is stale."""
        from mlflow.entities import RunTag

        seen = rivals()
        ticket = 1 + max((claim_ticket(r) for r in seen if r.info.run_id != run_id), default=0)
        self.client.log_batch(run_id, tags=[RunTag(TAG_TICKET, str(ticket)), RunTag(TAG_CHOOSING, "0")])
        seen = self._settled(rivals, mine=run_id)
        if not any(r.info.run_id == run_id for r in seen):  # not yet in a search: it is as written
            seen.append(self.client.get_run(run_id))
        return seen

    @staticmethod
    def _settled(rivals: Callable[[], list], mine: str | None = None) -> list:
        """``rivals()`` once none but ``mine`` is still taking a ticket."""
        while True:
            seen = rivals()
            if not any(choosing(r) for r in seen if r.info.run_id != mine):
                return seen
            time.sleep(QUEUE_POLL_SECONDS)

    def _close_lost(self, run_id: str, why: str) -> None:
        """End a run that must not go on (a lost claim, a second parent) as KILLED with ``why``,
        then delete it: the run list stays clean, and even the deleted view shows no RUNNING run."""
        self.client.set_tag(run_id, TAG_ERROR, why[:5000])
        self.client.set_terminated(run_id, status="KILLED")
        self.client.delete_run(run_id)

    def repair(self) -> list[str]:
        """Mend what a crash or a store failure left behind: RUNNING child runs whose claim is
        stale (their process died) become KILLED, deleted runs left RUNNING (a claim lost by a
        release before this one, or deleted by hand mid-run) are closed KILLED too, and RUNNING
        parents with no live child end with the status their seeds give them (``update_parent``).
        Returns what was done."""
        done = []
        running = f"tags.`{TAG_KIND}` = '{KIND_CHILD}' and attributes.status = 'RUNNING'"
        for run in self.search(running):
            if claim_is_stale(run.data.tags):
                self.fail(run.info.run_id, "left RUNNING by a process that is gone", status="KILLED")
                done.append(f"marked {run.info.run_name} KILLED: left RUNNING by a process that is gone")
        for run in self.search("attributes.status = 'RUNNING'", deleted=True):
            if claim_is_stale(run.data.tags):
                self.client.restore_run(run.info.run_id)  # MLflow changes only active runs
                self._close_lost(run.info.run_id, "deleted while RUNNING (a lost claim, or deleted by hand mid-run)")
                done.append(f"closed deleted run {run.info.run_name} (KILLED): it was left RUNNING")
        live_groups = {run.data.tags.get(TAG_GROUP) for run in self.search(running)}
        for parent in self.search(f"tags.`{TAG_KIND}` = '{KIND_PARENT}' and attributes.status = 'RUNNING'"):
            group = parent.data.tags.get(TAG_GROUP, "")
            if choosing(parent) and claim_is_stale(parent.data.tags):  # a candidate its command left unelected
                self._close_lost(parent.info.run_id, "a parent candidate whose command died while it was elected")
                done.append(f"closed parent candidate {parent.info.run_name}: its command died while electing it")
            elif group not in live_groups:
                self.update_parent(parent.info.run_id, group)
                done.append(f"closed parent {parent.info.run_name} left RUNNING")
        return done

    def release(self, run_id: str) -> None:
        """Remove a run's claim once it has ended (FINISHED, FAILED or KILLED): its ``bench.claim``
        and ``bench.heartbeat`` tags only described the process supervising it while it ran. A run
        still RUNNING (its results kept on disk while the store refused them) keeps its claim."""
        if self.client.get_run(run_id).info.status == "RUNNING":
            return
        tags = self.client.get_run(run_id).data.tags
        for key in (TAG_CLAIM, TAG_HEARTBEAT):
            if key in tags:
                self.client.delete_tag(run_id, key)

    def heartbeat(self, run_ids: list[str]) -> None:
        """Refresh the claims of these RUNNING runs."""
        now = f"{time.time():.0f}"
        for run_id in run_ids:
            self.client.set_tag(run_id, TAG_HEARTBEAT, now)
