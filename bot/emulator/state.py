"""The emulator's bookkeeping: bots, chats, per-bot update queues and request parameters.

Everything here is O(1) or O(batch) per request, so the emulator keeps up with load tests.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from bot.emulator.records import bad_request

ALL_UPDATE_TYPES = frozenset(
    {
        "message", "edited_message", "channel_post", "edited_channel_post",
        "business_connection", "business_message", "edited_business_message",
        "deleted_business_messages", "message_reaction", "message_reaction_count",
        "inline_query", "chosen_inline_result", "callback_query", "shipping_query",
        "pre_checkout_query", "purchased_paid_media", "poll", "poll_answer",
        "my_chat_member", "chat_member", "chat_join_request", "chat_boost",
        "removed_chat_boost",
    }
)  # fmt: skip
# Telegram's default when allowed_updates was never given (or given as an empty list).
DEFAULT_UPDATE_TYPES = ALL_UPDATE_TYPES - {
    "chat_member",
    "message_reaction",
    "message_reaction_count",
}
HISTORY_LIMIT = 100_000  # updates remembered for redeliver()


def dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass(slots=True)
class Upload:
    """A file part of a multipart request."""

    filename: str
    content_type: str | None
    data: bytes


@dataclass(slots=True)
class QueuedUpdate:
    seq: int
    update_id: int
    kind: str
    payload: bytes  # serialized once: later edits never change what was delivered
    delivered: bool = False
    redelivery: bool = False


class UpdateQueue:
    """Unconfirmed updates of one bot, in delivery order.

    getUpdates confirms by offset; webhooks confirm each update by a 2xx answer. A redelivered
    update keeps its old update_id, so it is served alone in its batch and survives
    confirmation until it has been handed out again.
    """

    def __init__(self) -> None:
        self.pending: OrderedDict[int, QueuedUpdate] = OrderedDict()
        self.unsent: deque[int] = deque()  # seqs not yet handed to the webhook sender
        self.webhook_mode = False
        self.next_update_id = 1
        self._seq = 0
        self.arrived = asyncio.Event()
        self.history: OrderedDict[int, tuple[str, bytes]] = OrderedDict()

    def _append(self, update_id: int, kind: str, payload: bytes, *, redelivery: bool) -> None:
        self._seq += 1
        self.pending[self._seq] = QueuedUpdate(
            self._seq, update_id, kind, payload, redelivery=redelivery
        )
        if self.webhook_mode:
            self.unsent.append(self._seq)
        self.arrived.set()

    def push(self, kind: str, body: dict[str, Any]) -> int:
        update_id = self.next_update_id
        self.next_update_id += 1
        payload = dumps({"update_id": update_id, kind: body})
        self.history[update_id] = (kind, payload)
        if len(self.history) > HISTORY_LIMIT:
            self.history.popitem(last=False)
        self._append(update_id, kind, payload, redelivery=False)
        return update_id

    def redeliver(self, update_id: int) -> None:
        kind, payload = self.history[update_id]
        self._append(update_id, kind, payload, redelivery=True)

    def confirm(self, offset: int) -> None:
        if offset < 0:
            while len(self.pending) > -offset:
                self.pending.popitem(last=False)
            return
        while self.pending:
            first = next(iter(self.pending.values()))
            if first.update_id >= offset or (first.redelivery and not first.delivered):
                break
            self.pending.popitem(last=False)

    def batch(self, limit: int) -> list[QueuedUpdate]:
        out: list[QueuedUpdate] = []
        for entry in self.pending.values():
            if entry.redelivery and not entry.delivered:
                if not out:
                    out.append(entry)
                break
            out.append(entry)
            if len(out) >= limit:
                break
        return out

    def next_unsent(self) -> QueuedUpdate | None:
        while self.unsent:
            entry = self.pending.get(self.unsent.popleft())
            if entry is not None:
                return entry
        return None

    def clear(self) -> None:
        self.pending.clear()
        self.unsent.clear()


@dataclass(slots=True)
class Webhook:
    url: str
    secret_token: str | None
    max_connections: int
    allowed_updates: list[str] | None
    worker: asyncio.Task[None] | None = None
    deliveries: set[asyncio.Task[None]] = field(default_factory=set)
    last_error_date: int | None = None
    last_error_message: str | None = None

    def info(self, pending: int) -> dict[str, Any]:
        data: dict[str, Any] = {
            "url": self.url,
            "has_custom_certificate": False,
            "pending_update_count": pending,
            "max_connections": self.max_connections,
        }
        if self.allowed_updates is not None:
            data["allowed_updates"] = self.allowed_updates
        if self.last_error_date is not None:
            data["last_error_date"] = self.last_error_date
            data["last_error_message"] = self.last_error_message
        return data


@dataclass(slots=True)
class BotAccount:
    token: str
    id: int
    username: str
    first_name: str
    can_read_all_group_messages: bool
    queue: UpdateQueue = field(default_factory=UpdateQueue)
    webhook: Webhook | None = None
    allowed_updates: frozenset[str] = DEFAULT_UPDATE_TYPES
    poll_generation: int = 0
    commands: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    started: set[int] = field(default_factory=set)
    blocked: set[int] = field(default_factory=set)

    @property
    def json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "is_bot": True,
            "first_name": self.first_name,
            "username": self.username,
        }

    def accepts(self, kind: str) -> bool:
        return kind in self.allowed_updates


@dataclass(slots=True)
class Chat:
    id: int
    type: str  # private, group, supergroup
    json: dict[str, Any]
    title: str
    members: set[int] = field(default_factory=set)
    admins: set[int] = field(default_factory=set)
    bots: set[int] = field(default_factory=set)
    bot_admins: set[int] = field(default_factory=set)
    auto_bots: bool = True  # bots added to the emulator later join this group too
    next_message_id: int = 1
    message_ids: list[int] = field(default_factory=list)
    last_bot_sender: int | None = None

    @property
    def is_group(self) -> bool:
        return self.type in ("group", "supergroup")


class Params:
    """Request parameters from a query string, JSON body or form, with Bot API coercions."""

    def __init__(self, values: dict[str, Any], uploads: dict[str, Upload]) -> None:
        self.values = values
        self.uploads = uploads

    def raw(self, name: str) -> Any:
        return self.values.get(name)

    def text(self, name: str) -> str | None:
        value = self.values.get(name)
        if value is None:
            return None
        return value if isinstance(value, str) else str(value)

    def integer(self, name: str, *, required: bool = False) -> int | None:
        value = self.values.get(name)
        if value is None or value == "":
            if required:
                raise bad_request(f"{name} is empty")
            return None
        if isinstance(value, bool):
            return int(value)
        try:
            return int(value)
        except (TypeError, ValueError):
            raise bad_request(f"invalid {name} specified") from None

    def number(self, name: str) -> float | None:
        value = self.values.get(name)
        if value is None or value == "":
            return None
        try:
            return float(value)
        except (TypeError, ValueError):
            raise bad_request(f"invalid {name} specified") from None

    def flag(self, name: str) -> bool:
        value = self.values.get(name)
        if isinstance(value, str):
            return value.strip().lower() in ("true", "1")
        return bool(value)

    def obj(self, name: str, *, what: str = "JSON object") -> Any:
        value = self.values.get(name)
        if not isinstance(value, str):
            return value
        if value == "":
            return None
        try:
            return json.loads(value)
        except ValueError:
            raise bad_request(f"can't parse {what}") from None

    def file(self, name: str) -> Upload | str | None:
        """An uploaded part (directly or via "attach://"), or a file_id/URL string."""
        if name in self.uploads:
            return self.uploads[name]
        value = self.values.get(name)
        if isinstance(value, str) and value.startswith("attach://"):
            upload = self.uploads.get(value[len("attach://") :])
            if upload is None:
                raise bad_request(f"failed to get {name}: attached file not found in request")
            return upload
        return value if isinstance(value, str) and value else None
