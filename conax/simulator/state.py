"""The simulated head-end as the gateway sees it: one key, one execution (idempotency), the fault draws and the
counters, thread-safe. The rules of each command are ``rules.py``; the HTTP side is ``server.py``."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Iterable
from typing import Any

from conax.cas_protocol import BAD_COMMAND, KEY, KEY_RULE, CasCommand, Completed, GatewayUnavailable, Outcome, Rejected
from conax.simulator.rules import Headend, Refusal, SetTopBox, Smartcard


class HeadendUnavailable(GatewayUnavailable):
    """The in-process form of a 503: the gateway's own retryable error, so it passes through unchanged."""


def envelope_problem(idempotency_key: Any, command_type: Any) -> str | None:
    """Why a command cannot even be filed under its key (the HTTP 400 cases), or None."""
    if not isinstance(idempotency_key, str) or not KEY.fullmatch(idempotency_key):
        return KEY_RULE
    if not isinstance(command_type, str):
        return "type must be a string"
    return None


def _share(name: str, value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1")
    return value


class CasSimulator:
    """The head-end, thread-safe: one lock around its state, its counters and its random draws."""

    def __init__(
        self,
        *,
        auto_register: bool = False,
        latency_ms: float = 0.0,
        unavailable_share: float = 0.0,
        lost_reply_share: float = 0.0,
        refuse_share: float = 0.0,
        seed: int | None = None,
    ) -> None:
        if latency_ms < 0:
            raise ValueError("latency_ms must not be negative")
        self.latency_ms = latency_ms
        self.unavailable_share = _share("unavailable_share", unavailable_share)
        self.lost_reply_share = _share("lost_reply_share", lost_reply_share)
        self.refuse_share = _share("refuse_share", refuse_share)
        self._auto_register = auto_register
        self._rng = random.Random(seed)  # noqa: S311 - fault draws, not secrets
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Forget every card, box, pairing, outcome and counter; the faults stay."""
        with self._lock:
            self.headend = Headend(self._auto_register)
            self._outcomes: dict[str, Outcome] = {}
            self.applied: dict[str, int] = {}
            self.sends = self.duplicates = self.lookups = self.unavailable = 0

    def register(self, *, smartcard_ca_ids: Iterable[str] = (), stb_ca_ids: Iterable[str] = ()) -> dict[str, int]:
        """Make cards and boxes known (factory-fresh); known ones are left as they are. Returns how many are new."""
        with self._lock:
            cards, stbs = self.headend.cards, self.headend.stbs
            new_cards = [ca_id for ca_id in dict.fromkeys(smartcard_ca_ids) if ca_id not in cards]
            new_stbs = [ca_id for ca_id in dict.fromkeys(stb_ca_ids) if ca_id not in stbs]
            cards.update((ca_id, Smartcard()) for ca_id in new_cards)
            stbs.update((ca_id, SetTopBox()) for ca_id in new_stbs)
        return {"smartcards": len(new_cards), "stbs": len(new_stbs)}

    def send(self, command: CasCommand, *, delay: bool = True) -> Outcome:
        """Carry out a command once per key; raises HeadendUnavailable for the faults. The HTTP server waits its
        latency on the event loop and passes ``delay=False``."""
        if delay:
            self._wait()
        key = command.idempotency_key
        problem = envelope_problem(key, command.type)
        with self._lock:
            self.sends += 1
            if problem:
                return Rejected(BAD_COMMAND, problem)  # nothing to file it under: not stored
            self._fault(self.unavailable_share, "unavailable")
            if key in self._outcomes:
                self.duplicates += 1
                return self._outcomes[key]
            outcome = self._execute(command)
            self._outcomes[key] = outcome
            self.applied[key] = self.applied.get(key, 0) + 1
            self._fault(self.lost_reply_share, "the reply was lost")
            return outcome

    def lookup(self, idempotency_key: str, *, delay: bool = True) -> Outcome | None:
        """The stored outcome of a key, or None; never carries anything out."""
        if delay:
            self._wait()
        with self._lock:
            self.lookups += 1
            self._fault(self.unavailable_share, "unavailable")
            return self._outcomes.get(idempotency_key)

    def card(self, ca_id: str) -> dict[str, Any] | None:
        """What the admin view shows of a card (never its PIN), or None when it is not known."""
        with self._lock:
            return self.headend.card_json(ca_id)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "sends": self.sends,
                "duplicates": self.duplicates,
                "lookups": self.lookups,
                "unavailable": self.unavailable,
                "keys": len(self._outcomes),
                "applied_more_than_once": sorted(key for key, count in self.applied.items() if count > 1),
            }

    def applied_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self.applied)

    def _wait(self) -> None:
        if self.latency_ms:
            time.sleep(self.latency_ms / 1000)

    def _fault(self, share: float, reason: str) -> None:
        """Called with the lock held, so that a seed gives the same draws in the same order."""
        if share and self._rng.random() < share:
            self.unavailable += 1
            raise HeadendUnavailable(f"CAS simulator: {reason}")

    def _execute(self, command: CasCommand) -> Outcome:
        if self.refuse_share and self._rng.random() < self.refuse_share:
            return Rejected("HEADEND_REFUSED", "the head-end refused the request")
        try:
            response = self.headend.execute(command.type, command.params)
        except Refusal as refusal:
            return Rejected(refusal.code, refusal.description)
        reference = str(uuid.uuid4())
        return Completed(reference, f"OK{reference}" if response is None else response)
