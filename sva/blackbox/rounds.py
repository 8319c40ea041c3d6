"""Several videos' attacks side by side, their queries merged into full batches
(``docs/attacks.md``, "Videos in flight").

A hard-label attack's binary searches, or the one-video check that ends each FGSM step,
ask the victim about one video at a time; :func:`~sva.blackbox.lockstep.run_lockstep`
can only merge what *one* video's attack asks at once. :func:`run_side_by_side` runs
the attacks of ``k`` videos at once, each in its own thread with its own
:class:`~sva.blackbox.oracle.Oracle` (its own budget and count), and the oracles send
their forward passes to one :class:`VideoRounds`, which evaluates them in **rounds**:
a round starts when every attack still running is waiting for an answer; the waiting
requests are concatenated in the attacks' fixed order and evaluated in chunks of the
batch size. So the victim sees full batches, every query is still counted by the oracle
of the video that asked it, and the batches are the same on every run: a round holds
exactly one request of every running attack, in a fixed order, whatever the threads'
timing (a video's answers can depend, in their last float bits, on which rows shared
its batch; the composition is deterministic, so the records are too).

**Lanes** (a GPU): the clients can be split into ``lanes`` by ``order % lanes``, each
lane with its own rounds and, on a CUDA device, its own CUDA stream, on which its
attacks' threads queue all their work. A round's forwards are only *queued*; while one
lane's forwards run, the other lane's attacks read their answers and prepare their next
requests, and a read-back (``.item()``, ``.cpu()``) in one lane waits for its own
stream only, not for the other lane's forwards. So the device does not idle between
rounds. The composition of each lane's rounds is fixed, so the records stay
deterministic. On the CPU a forward is computed where it is called, so lanes would only
take a second core the raw forward does not have: :func:`lanes_for` gives one there.
"""

from __future__ import annotations

import queue
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TypeVar

import torch
from torch import Tensor, nn

__all__ = ["RoundClient", "VideoRounds", "lanes_for", "run_side_by_side"]

T = TypeVar("T")


def lanes_for(device: torch.device | str, in_flight: int) -> int:
    """Lanes of a :class:`VideoRounds` for ``in_flight`` videos on ``device``: two on a
    CUDA device (one lane's forwards run while the other prepares), else one."""
    return 2 if torch.device(device).type == "cuda" and in_flight >= 2 else 1


class VideoRounds:
    """Forward passes of several clients merged into deterministic rounds.

    ``model``: ``(B, T, 3, H, W)`` → logits ``(B, C)``; ``batch_size``: videos per
    forward pass; ``lanes``: client ``order`` belongs to lane ``order % lanes``, and each
    lane's rounds hold its own clients only (module docstring). Clients are made with
    :meth:`client` (each with a distinct ``order``, the position of its rows in a round)
    before any of them asks; a client that is done must :meth:`RoundClient.close` so
    that the others' rounds can start.
    """

    def __init__(self, model: nn.Module, batch_size: int, lanes: int = 1):
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if int(lanes) != lanes or lanes < 1:
            raise ValueError(f"lanes must be a positive int, got {lanes!r}")
        self._model = model
        self._batch_size = int(batch_size)
        self._lanes = int(lanes)
        device = next(iter([*model.parameters(), *model.buffers()]), torch.empty(0)).device
        #: one CUDA stream per lane (None: the threads use the current stream), each after
        #: everything already queued on the current stream (the inputs, the weights)
        self.streams: list[torch.cuda.Stream] | None = None
        if self._lanes > 1 and device.type == "cuda":
            self.streams = [torch.cuda.Stream(device) for _ in range(self._lanes)]
            for st in self.streams:
                st.wait_stream(torch.cuda.current_stream(device))
        self._cond = threading.Condition()
        self._open: set[int] = set()
        self._pending: dict[int, Tensor] = {}
        self._answers: dict[int, Tensor | BaseException] = {}
        self.rounds = 0  #: rounds evaluated so far
        self.forwards = 0  #: forward passes so far
        self.rows = 0  #: videos evaluated so far
        self.round_sizes: Counter[int] = Counter()  #: rounds evaluated, by their number of videos

    def client(self, order: int) -> RoundClient:
        """A new client whose rows come at position ``order`` of every round."""
        with self._cond:
            if order in self._open:
                raise ValueError(f"a client with order {order} is already open")
            self._open.add(order)
        return RoundClient(self, order, None if self.streams is None else self.streams[order % self._lanes])

    # -- called by RoundClient ------------------------------------------------------
    def _forward(self, order: int, videos: Tensor) -> Tensor:
        with self._cond:
            if order not in self._open:
                raise RuntimeError(f"client {order} is closed")
            self._pending[order] = videos
            self._maybe_run(order % self._lanes)
            while order not in self._answers:
                self._cond.wait()
            answer = self._answers.pop(order)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def _close(self, order: int) -> None:
        with self._cond:
            self._open.discard(order)
            self._pending.pop(order, None)
            self._maybe_run(order % self._lanes)

    def _maybe_run(self, lane: int) -> None:
        """With the lock held: evaluate ``lane``'s round once each of its open clients waits."""
        orders = sorted(o for o in self._pending if o % self._lanes == lane)
        if not orders or len(orders) < sum(1 for o in self._open if o % self._lanes == lane):
            return
        requests = [self._pending.pop(o) for o in orders]
        try:
            if self.streams is None:
                logits = self._evaluate(requests)
            else:  # on the lane's stream, whichever thread runs the round (a closing one too)
                with torch.cuda.stream(self.streams[lane]):
                    logits = self._evaluate(requests)
            results: list[Tensor | BaseException] = list(logits)
        except BaseException as err:  # every waiting client gets the error
            results = [err] * len(orders)
        for o, r in zip(orders, results):
            self._answers[o] = r
        self.rounds += 1
        self._cond.notify_all()

    def _evaluate(self, requests: list[Tensor]) -> list[Tensor]:
        """Logits for each request, from forwards of ``batch_size`` rows taken in order
        over the concatenated requests (a chunk inside one request is a view, no copy)."""
        sizes = [int(r.shape[0]) for r in requests]
        total, bs = sum(sizes), self._batch_size
        bounds = [0]
        for s in sizes:
            bounds.append(bounds[-1] + s)
        out: list[Tensor] = []
        with torch.inference_mode():
            for start in range(0, total, bs):
                stop = min(start + bs, total)
                pieces = []
                for i, r in enumerate(requests):
                    lo, hi = max(start, bounds[i]), min(stop, bounds[i + 1])
                    if lo < hi:
                        pieces.append(r[lo - bounds[i]:hi - bounds[i]])
                chunk = pieces[0] if len(pieces) == 1 else torch.cat(pieces)
                logits = self._model(chunk)
                if logits.dim() != 2 or logits.shape[0] != stop - start:
                    raise RuntimeError(f"model returned {tuple(logits.shape)} for {stop - start} videos")
                out.append(logits)
                self.forwards += 1
        self.rows += total
        self.round_sizes[total] += 1
        allrows = out[0] if len(out) == 1 else torch.cat(out)
        return [allrows[bounds[i]:bounds[i + 1]] for i in range(len(requests))]


class RoundClient:
    """One attack's handle on a :class:`VideoRounds` (give it to an Oracle as ``rounds``)."""

    def __init__(self, rounds: VideoRounds, order: int, stream: torch.cuda.Stream | None = None):
        self._rounds, self.order = rounds, order
        self.stream = stream  #: the CUDA stream of this client's lane (None: the thread's current one)

    def forward(self, videos: Tensor) -> Tensor:
        """Logits ``(B, C)`` of ``videos`` ``(B, T, 3, H, W)`` (on the model's device),
        evaluated in the next round; blocks until then."""
        return self._rounds._forward(self.order, videos)

    def close(self) -> None:
        """This client asks nothing more (idempotent)."""
        self._rounds._close(self.order)


def run_side_by_side(
    rounds: VideoRounds, jobs: Sequence[Callable[[RoundClient], T]],
    on_done: Callable[[int, T], None] | None = None,
) -> list[T]:
    """Run ``jobs`` at once, job ``i`` in a thread with client ``i`` of ``rounds``.

    ``on_done(i, result)`` is called in the calling thread as each job finishes (in
    the order they finish), e.g. to write its record at once; returns the results in
    job order. A job that raises closes its client (the others go on); after every job
    has ended, the first error (in job order) is raised.
    """
    done: queue.Queue[tuple[int, object, BaseException | None]] = queue.Queue()
    clients = [rounds.client(i) for i in range(len(jobs))]

    def work(i: int) -> None:
        stream = clients[i].stream
        try:
            if stream is None:
                result = jobs[i](clients[i])
            else:  # the lane's stream; finished before the result leaves the thread
                with torch.cuda.stream(stream):
                    result = jobs[i](clients[i])
                stream.synchronize()
        except BaseException as err:  # reported to the caller, never lost in the thread
            clients[i].close()
            done.put((i, None, err))
            return
        clients[i].close()
        done.put((i, result, None))

    threads = [threading.Thread(target=work, args=(i,), name=f"video-{i}", daemon=True) for i in range(len(jobs))]
    for t in threads:
        t.start()
    results: dict[int, object] = {}
    errors: dict[int, BaseException] = {}
    callback_error: BaseException | None = None
    for _ in jobs:
        i, result, err = done.get()
        if err is not None:
            errors[i] = err
            continue
        results[i] = result
        if on_done is not None and callback_error is None:
            try:
                on_done(i, result)  # type: ignore[arg-type]
            except BaseException as cb_err:  # keep the other jobs' results flowing, raise after
                callback_error = cb_err
    for t in threads:
        t.join()
    if errors:
        raise errors[min(errors)]
    if callback_error is not None:
        raise callback_error
    return [results[i] for i in range(len(jobs))]  # type: ignore[misc]
