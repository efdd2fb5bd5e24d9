"""Keys in the order they were typed.

Textual hands each key from the terminal to the focused widget's queue and goes straight on to
the next. A key that moves the focus (``tab``, ``enter`` in a form, ``/``) or opens a screen
(``n``, ``e``) acts only once it has gone through the widget and bubbled back up to the app: by
then the keys that came in the same read (a burst over SSH, a paste, a fast typist) have already
been handed to the widget that had the focus before. ``alpha``, then ``tab b e t a`` in one read,
named a key ``alphabeta``.

Here a key is handed on only once the one before it has been dealt with: it has been through the
widgets, its bindings have run, and what they set off (a submitted field moving the focus, a
screen mounting and focusing its first field) has been handled. The app holds keys back while it
cannot run them yet (its first half second, before the service opens) and while it prepares a
dialog (a check with the service before the dialog opens): the keys typed meanwhile go to the
dialog, as they were meant to.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from textual import events, messages
from textual.app import App, ScreenError
from textual.dom import DOMNode
from textual.message import Message

#: Rounds of "has every queue on the key's way been worked through?" before giving up on a key
#: (a screen refreshing without end); one round takes well under a millisecond.
MAX_ROUNDS = 24
#: A node that never runs the callback of a round (removed meanwhile) holds a key this long.
ROUND_TIMEOUT = 2.0
#: Messages that only paint or blink: handling them never moves the focus or opens a screen.
PAINTING = (
    messages.Update,
    messages.Layout,
    messages.UpdateScroll,
    messages.Prompt,
    messages.ScrollToRegion,
    events.Timer,
    events.Idle,
)


class TypedKeys:
    """The app's queue of keys typed but not yet handed on; see the module's words."""

    def __init__(self, app: App[Any], send: Callable[[events.Key], Awaitable[None]]) -> None:
        """``send``: Textual's own handling of a key arriving at the app (priority bindings,
        then the focused widget)."""
        self.app = app
        self._send = send
        self._queue: deque[events.Key] = deque()
        self._holds = 0
        self._way: list[DOMNode] = []  # the nodes of the key on its way, as it was sent
        self._running = False  # a task is handing keys on
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self.rounds = 0  # the rounds the last key took (see _settle)

    @property
    def busy(self) -> bool:
        """Keys are waiting, or one is on its way."""
        return bool(self._queue) or self._running

    async def take(self, key: events.Key) -> None:
        """A key from the terminal: hand it on now if nothing is before it, else queue it."""
        self._queue.append(key)
        self._idle.clear()
        if self._running:
            return
        if not self._holds:
            await self._hand_on(self._queue.popleft())  # at once, in the app's own task
        self._start()

    def hold(self) -> None:
        """Keep keys back (until as many ``release`` calls)."""
        self._holds += 1

    def release(self) -> None:
        self._holds = max(0, self._holds - 1)
        if not self._holds and self._queue and not self._running:
            # What ended the hold (a dialog pushed, a screen closed) settles first
            self._way = self._way or [self.app]
            self._start()

    async def drained(self, timeout: float = 30.0) -> None:
        """Wait until every key taken has been dealt with (or is held back)."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return

    # -- the task -------------------------------------------------------------------------------

    def _start(self) -> None:
        if not self._way and not (self._queue and not self._holds):
            self._settled()
            return
        self._running = True
        self._task = asyncio.create_task(self._run())  # kept, so it is not collected

    async def _run(self) -> None:
        try:
            while True:
                if self._way:
                    await self._settle()
                    self._way = []
                if not self._queue or self._holds:
                    break
                await self._hand_on(self._queue.popleft())
        except Exception as error:  # noqa: BLE001 - a bug here ends the app, as Textual's would
            self.app._handle_exception(error)
        finally:
            self._running = False
            self._settled()

    def _settled(self) -> None:
        if not self._queue or self._holds:
            self._idle.set()

    async def _hand_on(self, key: events.Key) -> None:
        app = self.app
        try:
            target: DOMNode = app.focused or app.screen
        except ScreenError:  # no screen left: the app is ending
            target = app
        self._way = [target, *target.ancestors]
        try:
            await self._send(key)
        except Exception as error:  # noqa: BLE001 - a binding's bug ends the app, as Textual's would
            app._handle_exception(error)

    def _nodes(self) -> list[DOMNode]:
        """Where the key and what it set off may be: its way up from the widget it was handed
        to, the focused widget's way up now, the screen now, and the app."""
        app = self.app
        nodes: dict[int, DOMNode] = {id(node): node for node in self._way}
        focused = app.focused
        if focused is not None:
            nodes.update((id(node), node) for node in focused.ancestors_with_self)
        try:
            screen = app.screen
        except ScreenError:  # no screen left: the app is ending
            pass
        else:
            nodes[id(screen)] = screen
        nodes[id(app)] = app
        return list(nodes.values())

    async def _settle(self) -> None:
        """Wait until the key, and what it set off, has been dealt with: rounds of a callback
        queued on every node of its way, of the focus's and on the screen, until a round in
        which those nodes handled nothing but the callbacks and painting, with nothing left
        queued. (A node's queue alone does not say it is idle: it may be in the middle of a
        message, which is why the messages each node handles are watched.)"""
        self.rounds = 0
        while self.rounds < MAX_ROUNDS:
            self.rounds += 1
            quiet = await self._quiet_round()
            if quiet and not any(node.message_queue_size for node in self._nodes()):
                return

    async def _quiet_round(self) -> bool:
        """One round: did the nodes handle nothing but our callbacks and painting?"""
        nodes = self._nodes()
        loop = asyncio.get_running_loop()
        ours: set[int] = set()
        handled: list[Message] = []

        def seen(message: Message) -> None:
            if id(message) not in ours and not isinstance(message, PAINTING):
                handled.append(message)

        waiting: list[asyncio.Future[None]] = []
        for node in nodes:
            if node.is_running:  # (nothing else listens to a node's own messages)
                node.message_signal.subscribe(node, seen, immediate=True)
            done: asyncio.Future[None] = loop.create_future()
            callback = events.Callback(callback=partial(_finish, done))
            ours.add(id(callback))
            if node.post_message(callback):
                waiting.append(done)
        try:
            if waiting:
                await asyncio.wait(waiting, timeout=ROUND_TIMEOUT)
        finally:
            for node in nodes:
                node.message_signal.unsubscribe(node)
        return not handled


def _finish(done: asyncio.Future[None]) -> None:
    if not done.done():
        done.set_result(None)
