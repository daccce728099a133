"""A local Telegram Bot API server: the real aiogram bot talks HTTP to it, tests play the users.

See ``bot/emulator/README.md`` for what is emulated, what is not, and how to script it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import logging
import math
import re
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Self

import aiohttp
from aiogram.client.session.aiohttp import AiohttpSession
from aiohttp import web

from bot.emulator.formatting import (
    EntityParseError,
    ParsedText,
    command_entities,
    parse_html,
    trim,
)
from bot.emulator.media import (
    GETFILE_LIMIT,
    FileStore,
    ImageUndecodable,
    StoredFile,
    guess_mime,
    recompress,
)
from bot.emulator.players import Group, MessageLike, User
from bot.emulator.records import (
    ApiError,
    BotMessage,
    EmulatorEvent,
    EmulatorTimeout,
    MessageRef,
    bad_request,
    buttons_of,
    forbidden,
)
from bot.emulator.state import (
    ALL_UPDATE_TYPES,
    DEFAULT_UPDATE_TYPES,
    BotAccount,
    Chat,
    Params,
    Upload,
    Webhook,
    dumps,
)

log = logging.getLogger(__name__)

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
USER_CAPTION_LIMIT = 4096  # premium users may write longer captions than bots
CALLBACK_DATA_LIMIT = 64
MAX_UPLOAD = 64 * 1024 * 1024

_NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
_CALLBACK_EXPIRED = "query is too old and response timeout expired or query ID is invalid"
_WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
_POLL_CONFLICT = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)
_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")
_COMMAND_RE = re.compile(r"[a-z0-9_]{1,32}")
_NO_RATE_LIMIT = frozenset({"getupdates", "getme", "close", "logout"})

# Methods that only need to succeed for a bot's start-up code to run.
_ACCEPTED_METHODS = (
    "setMyDescription",
    "setMyShortDescription",
    "setMyName",
    "setChatMenuButton",
    "setMyDefaultAdministratorRights",
)
_METHODS = (
    "getMe", "logOut", "close", "getUpdates", "setWebhook", "deleteWebhook", "getWebhookInfo",
    "sendMessage", "sendPhoto", "sendDocument", "sendLocation", "sendMediaGroup",
    "editMessageText", "editMessageCaption", "editMessageReplyMarkup", "deleteMessage",
    "answerCallbackQuery", "getFile", "setMyCommands", "getMyCommands", "deleteMyCommands",
    "getChat", "getChatMember", "sendChatAction",
)  # fmt: skip

Clock = Callable[[], float]
EventListener = Callable[[EmulatorEvent], object]


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


class _LoopbackSession(AiohttpSession):
    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


class _TokenBucket:
    """A rate limit on the injected clock: ``capacity`` messages, refilled at ``rate``/s."""

    __slots__ = ("capacity", "rate", "tokens", "updated")

    def __init__(self, capacity: float, rate: float, now: float) -> None:
        self.capacity = capacity
        self.rate = rate
        self.tokens = capacity
        self.updated = now

    def take(self, now: float) -> float:
        """Take one token; return 0 on success or the seconds to wait."""
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class BotAPIEmulator:
    """Bot API over HTTP for any number of bots, plus a Python API to play users and groups.

    ``clock`` gives message dates (inject a fake clock to control time); waits use real time.
    ``strict_html`` also rejects a bare "&" in HTML (Telegram keeps it as text).
    ``realistic_limits`` turns on per-chat/per-group/global sending limits answering 429.
    """

    def __init__(
        self,
        *,
        clock: Clock = time.time,
        strict_html: bool = True,
        realistic_limits: bool = False,
        webhook_retry_delays: tuple[float, ...] = (0.05, 0.2, 0.5),
        webhook_timeout: float = 10.0,
        quiet_period: float = 0.05,
    ) -> None:
        self._clock = clock
        self._strict_html = strict_html
        self._realistic_limits = realistic_limits
        # What official clients refuse to send; a test of a hostile or modified client
        # (MTProto lets one send anything) sets this to False.
        self.client_checks = True
        self._retry_delays = webhook_retry_delays
        self._webhook_timeout = webhook_timeout
        self._quiet_period = quiet_period

        self._bots: dict[str, BotAccount] = {}
        self._bots_by_id: dict[int, BotAccount] = {}
        self._default_bot: BotAccount | None = None
        self._users: dict[int, User] = {}
        self._chats: dict[int, Chat] = {}
        self._chats_by_username: dict[str, Chat] = {}
        self._messages: dict[tuple[int, int], dict[str, Any]] = {}
        self.files = FileStore()

        self.sent: list[BotMessage] = []
        self._sent_by_chat: defaultdict[int, list[BotMessage]] = defaultdict(list)
        self._first_unconsumed: dict[int | None, int] = {}
        self.deleted: list[tuple[int, int]] = []
        self.calls: Counter[str] = Counter()
        self.refusals: Counter[int] = Counter()  # error answers by HTTP status (429, 403 ...)
        self.callback_answers: dict[str, dict[str, Any]] = {}
        self.webhook_failures: list[int] = []
        self._open_queries: dict[str, tuple[int, Chat]] = {}  # query id -> (bot id, chat)
        self._query_ids = itertools.count(4_000_000_000_000_000_001)
        self._media_group_ids = itertools.count(13_000_000_000_000_001)
        self._rate_rules: list[list[Any]] = []
        self._buckets: dict[tuple[str, int | str], _TokenBucket] = {}
        self._listeners: list[EventListener] = []

        self._changed = asyncio.Event()
        self._active_requests = 0
        self._last_activity = 0.0
        self._stopping = False
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self._base_url: str | None = None
        self._methods: dict[str, tuple[str, Callable[[BotAccount, Params], Awaitable[Any]]]] = {
            name.lower(): (name, getattr(self, "_api_" + _snake(name))) for name in _METHODS
        }
        for name in _ACCEPTED_METHODS:
            self._methods[name.lower()] = (name, self._api_accepted)

    # == lifecycle ==========================================================================

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        app = web.Application(client_max_size=MAX_UPLOAD)
        app.router.add_route("*", r"/bot{token}/{method}", self._handle_api)
        app.router.add_route("GET", r"/file/bot{token}/{path:.+}", self._handle_file)
        # Cancel a handler when its client goes away: an abandoned long poll must not linger.
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound_host, bound_port = self._runner.addresses[0][:2]
        self._base_url = f"http://{bound_host}:{bound_port}"
        self._http = aiohttp.ClientSession()
        self._stopping = False
        self._last_activity = asyncio.get_running_loop().time()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``; give it to ``TelegramAPIServer.from_base``."""
        if self._base_url is None:
            raise RuntimeError("the emulator is not started")
        return self._base_url

    def aiogram_session(self) -> AiohttpSession:
        """An aiogram session pointed at this emulator: ``Bot(token, session=...)``.

        Closing it skips aiogram's 250 ms TLS grace sleep, which loopback HTTP does not need.
        """
        from aiogram.client.telegram import TelegramAPIServer

        return _LoopbackSession(api=TelegramAPIServer.from_base(self.base_url))

    async def stop(self) -> None:
        self._stopping = True
        for bot in self._bots.values():
            bot.queue.arrived.set()  # long polls answer at once
            if bot.webhook is not None:
                await self._stop_webhook(bot.webhook)
        if self._http is not None:
            await self._http.close()
            self._http = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # == setting the scene ==================================================================

    def add_bot(
        self,
        token: str,
        *,
        username: str = "gridbot",
        first_name: str = "Gridbot",
        can_read_all_group_messages: bool = True,
    ) -> dict[str, Any]:
        """Register a bot; its id is the number before ":" in the token. Returns its User."""
        head, sep, secret = token.partition(":")
        if not (head.isdigit() and sep and secret):
            raise ValueError("a bot token looks like '123456:ABC-secret'")
        bot = BotAccount(
            token=token,
            id=int(head),
            username=username,
            first_name=first_name,
            can_read_all_group_messages=can_read_all_group_messages,
        )
        self._bots[token] = bot
        self._bots_by_id[bot.id] = bot
        if self._default_bot is None:
            self._default_bot = bot
        for chat in self._chats.values():
            if chat.is_group and chat.auto_bots:
                chat.bots.add(bot.id)
        return bot.json

    def user(
        self,
        user_id: int,
        first_name: str,
        *,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "zh-hans",
    ) -> User:
        """A person; their private chat with the bot has chat id == user id."""
        person = User(
            self, user_id, first_name, last_name=last_name, username=username,
            language_code=language_code,
        )  # fmt: skip
        self._users[user_id] = person
        chat_json: dict[str, Any] = {"id": user_id, "type": "private", "first_name": first_name}
        if last_name:
            chat_json["last_name"] = last_name
        if username:
            chat_json["username"] = username
        self._chats[user_id] = Chat(
            id=user_id, type="private", json=chat_json, title=person.full_name,
            members={user_id},
        )  # fmt: skip
        return person

    def group(
        self,
        chat_id: int,
        title: str,
        *,
        members: list[User] | tuple[User, ...] = (),
        admins: list[User] | tuple[User, ...] = (),
        username: str | None = None,
        supergroup: bool = True,
        with_bot: bool = True,
    ) -> Group:
        """A group chat (a supergroup unless told otherwise; ids like -1001000000002).

        ``with_bot`` makes every bot a member without any update, as if added long ago;
        use ``user.add_bot_to(group)`` to play the adding itself.
        """
        chat_json: dict[str, Any] = {
            "id": chat_id,
            "type": "supergroup" if supergroup else "group",
            "title": title,
        }
        if username:
            chat_json["username"] = username
        chat = Chat(
            id=chat_id, type=chat_json["type"], json=chat_json, title=title,
            members={m.id for m in (*members, *admins)}, admins={a.id for a in admins},
            auto_bots=with_bot,
        )  # fmt: skip
        if with_bot:
            chat.bots.update(self._bots_by_id)
        self._chats[chat_id] = chat
        if username:
            self._chats_by_username[username.lower()] = chat
        return Group(self, chat_id, title)

    def make_admin(self, chat: Group | int, bot: dict[str, Any] | str | int | None = None) -> None:
        """Promote a bot to administrator of a group, which lifts privacy mode there."""
        target = self._chat(chat)
        account = self._bot(bot)
        was_member = account.id in target.bots
        target.bots.add(account.id)
        target.bot_admins.add(account.id)
        promoter = next(iter(target.admins or target.members), None)
        sender = self._users[promoter].json if promoter in self._users else _SYSTEM_ADMIN
        self._push(
            account,
            "my_chat_member",
            {
                "chat": target.json,
                "from": sender,
                "date": self._now(),
                "old_chat_member": {
                    "status": "member" if was_member else "left",
                    "user": account.json,
                },
                "new_chat_member": _administrator(account.json),
            },
        )

    def on_event(self, listener: EventListener) -> None:
        """Call ``listener(event)`` for every user action and bot message (transcripts)."""
        self._listeners.append(listener)

    def rate_limit(
        self, method: str | None = None, *, times: int = 1, retry_after: int = 5
    ) -> None:
        """Answer the next ``times`` calls of ``method`` (any method but getUpdates if None)
        with 429 "Too Many Requests: retry after N"."""
        self._rate_rules.append([method.lower() if method else None, times, retry_after])

    # == observing the bot ==================================================================

    def messages_in(self, chat: Group | User | int) -> list[dict[str, Any]]:
        """Every message currently in a chat (users' and bots'), oldest first."""
        target = self._chat(chat)
        return [
            self._messages[(target.id, mid)]
            for mid in target.message_ids
            if (target.id, mid) in self._messages
        ]

    def message(self, chat: Group | User | int, message_id: int) -> dict[str, Any] | None:
        """A message as it is now (after edits), or None if deleted or unknown."""
        return self._messages.get((self._chat(chat).id, message_id))

    async def wait_for(
        self,
        chat: Group | User | int | None = None,
        *,
        predicate: Callable[[BotMessage], bool] | None = None,
        contains: str | None = None,
        method: str | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 - a per-call bound is the readable test API
    ) -> BotMessage:
        """The next bot message (send or edit) matching every filter that no earlier wait took.

        ``contains`` looks in the plain text or caption. Raises :class:`EmulatorTimeout`
        (an ``AssertionError``) listing what the bot did send when nothing matches in time.
        """
        chat_id = None if chat is None else self._chat_id(chat)
        wanted_method = method.lower() if method else None

        def find() -> BotMessage | None:
            pool = self.sent if chat_id is None else self._sent_by_chat.get(chat_id, [])
            start = self._first_unconsumed.get(chat_id, 0)
            while start < len(pool) and pool[start].consumed:
                start += 1
            self._first_unconsumed[chat_id] = start
            for candidate in itertools.islice(pool, start, None):
                if candidate.consumed:
                    continue
                if wanted_method and candidate.method.lower() != wanted_method:
                    continue
                if contains is not None and contains not in candidate.body:
                    continue
                if predicate is not None and not predicate(candidate):
                    continue
                return candidate
            return None

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            changed = self._changed
            found = find()
            if found is not None:
                found.consumed = True
                return found
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise EmulatorTimeout(self._describe_wait(chat_id, contains, method, timeout))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

    async def wait_for_callback_answer(
        self,
        query_id: str,
        timeout: float = 5.0,  # noqa: ASYNC109 - same shape as wait_for
    ) -> dict[str, Any]:
        """The bot's answerCallbackQuery for this query (text, show_alert, url, cache_time)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            changed = self._changed
            if query_id in self.callback_answers:
                return self.callback_answers[query_id]
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise EmulatorTimeout(f"the bot did not answer callback query {query_id}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

    async def wait_until_idle(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Best effort: wait until every update was taken (confirmed by offset or webhook 2xx),
        no request is in progress and none arrived for the quiet period.

        A handler busy without calling the API for longer than the quiet period looks idle.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            changed = self._changed
            now = loop.time()
            busy = self._active_requests > 0 or any(
                bot.queue.pending or (bot.webhook is not None and bot.webhook.deliveries)
                for bot in self._bots.values()
            )
            quiet_left = self._last_activity + self._quiet_period - now
            if not busy and quiet_left <= 0:
                return
            remaining = deadline - now
            if remaining <= 0:
                pending = {b.username: len(b.queue.pending) for b in self._bots.values()}
                raise EmulatorTimeout(
                    f"the bot did not go idle within {timeout}s "
                    f"(unconfirmed updates: {pending}, requests in progress: "
                    f"{self._active_requests})"
                )
            wait = remaining if busy else min(remaining, quiet_left)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), wait)

    def redeliver(self, update_id: int, *, bot: dict[str, Any] | str | int | None = None) -> None:
        """Queue an already delivered update again, byte for byte (same update_id)."""
        self._bot(bot).queue.redeliver(update_id)

    def pending_updates(
        self, *, bot: dict[str, Any] | str | int | None = None
    ) -> list[dict[str, Any]]:
        """Updates queued for the bot and not yet confirmed."""
        import json

        return [json.loads(e.payload) for e in self._bot(bot).queue.pending.values()]

    # == HTTP ===============================================================================

    def _response(self, body: dict[str, Any] | bytes, status: int = 200) -> web.Response:
        raw = body if isinstance(body, bytes) else dumps(body)
        return web.Response(body=raw, status=status, content_type="application/json")

    def _touch(self) -> None:
        self._last_activity = asyncio.get_running_loop().time()
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _handle_api(self, request: web.Request) -> web.Response:
        bot = self._bots.get(request.match_info["token"])
        if bot is None:
            return self._response(ApiError(401, "Unauthorized").payload(), 401)
        entry = self._methods.get(request.match_info["method"].lower())
        if entry is None:
            return self._response(ApiError(404, "Not Found").payload(), 404)
        name, handler = entry
        self.calls[name] += 1
        long_poll = name == "getUpdates"
        if not long_poll:
            self._active_requests += 1
        self._touch()
        try:
            params = await _read_params(request)
            self._check_rate_limit(name, params)
            result = await handler(bot, params)
        except ApiError as error:
            self.refusals[error.status] += 1
            return self._response(error.payload(), error.status)
        except Exception as error:  # a bug in the emulator must reach the test, not hang it
            log.exception("emulator failed on %s", name)
            return self._response(
                ApiError(500, f"Internal Server Error: {error!r}").payload(), 500
            )
        finally:
            if not long_poll:
                self._active_requests -= 1
            self._touch()
        if isinstance(result, bytes):
            return self._response(b'{"ok":true,"result":' + result + b"}")
        return self._response({"ok": True, "result": result})

    async def _handle_file(self, request: web.Request) -> web.Response:
        if request.match_info["token"] not in self._bots:
            return self._response(ApiError(401, "Unauthorized").payload(), 401)
        stored = self.files.by_path(request.match_info["path"])
        if stored is None or stored.size > GETFILE_LIMIT:
            return self._response(ApiError(404, "Not Found").payload(), 404)
        return web.Response(body=stored.data, content_type="application/octet-stream")

    def _check_rate_limit(self, name: str, params: Params) -> None:
        lowered = name.lower()
        for rule in self._rate_rules:
            method, left, retry_after = rule
            if left > 0 and (method == lowered or (method is None and lowered != "getupdates")):
                rule[1] -= 1
                self._rate_rules = [r for r in self._rate_rules if r[1] > 0]
                raise _too_many(retry_after)
        if self._realistic_limits and lowered.startswith("send") and lowered != "sendchataction":
            self._check_realistic_limits(params)

    def _check_realistic_limits(self, params: Params) -> None:
        now = self._clock()
        raw_chat = params.raw("chat_id")
        chat_key: int | str = raw_chat if isinstance(raw_chat, int) else str(raw_chat)
        chat_number = _as_int(raw_chat)
        chat = self._chats.get(chat_number) if chat_number is not None else None
        in_group = chat is not None and chat.is_group
        checks = [
            # ~30 messages/s overall, ~1/s per private chat (short bursts tolerated),
            # 20 messages/min per group
            (("global", 0), 30.0, 30.0),
            (("group", chat_key), 20.0, 20 / 60) if in_group else (("chat", chat_key), 3.0, 1.0),
        ]
        for key, capacity, rate in checks:
            bucket = self._buckets.setdefault(key, _TokenBucket(capacity, rate, now))
            wait = bucket.take(now)
            if wait > 0:
                raise _too_many(max(1, math.ceil(wait)))

    # == Bot API: updates and webhooks ======================================================

    async def _api_get_me(self, bot: BotAccount, params: Params) -> dict[str, Any]:
        return {
            **bot.json,
            "can_join_groups": True,
            "can_read_all_group_messages": bot.can_read_all_group_messages,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _api_log_out(self, bot: BotAccount, params: Params) -> bool:
        return True

    async def _api_close(self, bot: BotAccount, params: Params) -> bool:
        return True

    async def _api_accepted(self, bot: BotAccount, params: Params) -> bool:
        return True

    async def _api_get_updates(self, bot: BotAccount, params: Params) -> bytes:
        if bot.webhook is not None:
            raise ApiError(409, _WEBHOOK_CONFLICT)
        queue = bot.queue
        offset = params.integer("offset")
        limit = min(max(params.integer("limit") or 100, 1), 100)
        timeout = max(params.integer("timeout") or 0, 0)
        allowed = params.obj("allowed_updates")
        if isinstance(allowed, list):
            bot.allowed_updates = (
                frozenset(a for a in allowed if a in ALL_UPDATE_TYPES) or DEFAULT_UPDATE_TYPES
            )
        # Like Telegram, a new getUpdates ends the one still waiting.
        bot.poll_generation += 1
        generation = bot.poll_generation
        queue.arrived.set()
        if offset is not None:
            queue.confirm(offset)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            queue.arrived.clear()
            batch = queue.batch(limit)
            remaining = deadline - loop.time()
            if batch or remaining <= 0 or self._stopping:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(queue.arrived.wait(), remaining)
            if bot.poll_generation != generation or bot.webhook is not None:
                raise ApiError(409, _POLL_CONFLICT)
        for entry in batch:
            entry.delivered = True
        return b"[" + b",".join(entry.payload for entry in batch) + b"]"

    async def _api_set_webhook(self, bot: BotAccount, params: Params) -> bool:
        url = params.text("url") or ""
        if not url:
            return await self._api_delete_webhook(bot, params)
        if not url.startswith(("http://", "https://")):
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.text("secret_token")
        if secret and not _SECRET_RE.fullmatch(secret):
            raise bad_request("secret token contains unallowed characters")
        max_connections = min(max(params.integer("max_connections") or 40, 1), 100)
        allowed = params.obj("allowed_updates")
        if isinstance(allowed, list):
            bot.allowed_updates = (
                frozenset(a for a in allowed if a in ALL_UPDATE_TYPES) or DEFAULT_UPDATE_TYPES
            )
        if params.flag("drop_pending_updates"):
            bot.queue.clear()
        if bot.webhook is not None:
            await self._stop_webhook(bot.webhook)
        webhook = Webhook(
            url=url,
            secret_token=secret or None,
            max_connections=max_connections,
            allowed_updates=allowed if isinstance(allowed, list) else None,
        )
        bot.webhook = webhook
        bot.queue.webhook_mode = True
        bot.queue.unsent.clear()
        bot.queue.unsent.extend(bot.queue.pending)
        bot.queue.arrived.set()  # a long poll still waiting ends with 409
        webhook.worker = asyncio.create_task(self._webhook_sender(bot, webhook))
        return True

    async def _api_delete_webhook(self, bot: BotAccount, params: Params) -> bool:
        if params.flag("drop_pending_updates"):
            bot.queue.clear()
        webhook, bot.webhook = bot.webhook, None
        bot.queue.webhook_mode = False
        bot.queue.unsent.clear()
        if webhook is not None:
            await self._stop_webhook(webhook)
        return True

    async def _api_get_webhook_info(self, bot: BotAccount, params: Params) -> dict[str, Any]:
        pending = len(bot.queue.pending)
        if bot.webhook is None:
            return {"url": "", "has_custom_certificate": False, "pending_update_count": pending}
        return bot.webhook.info(pending)

    async def _stop_webhook(self, webhook: Webhook) -> None:
        tasks = [t for t in (webhook.worker, *webhook.deliveries) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _webhook_sender(self, bot: BotAccount, webhook: Webhook) -> None:
        slots = asyncio.Semaphore(webhook.max_connections)
        queue = bot.queue
        while bot.webhook is webhook and not self._stopping:
            queue.arrived.clear()
            entry = queue.next_unsent()
            if entry is None:
                await queue.arrived.wait()
                continue
            await slots.acquire()
            task = asyncio.create_task(self._webhook_deliver(bot, webhook, entry.seq, slots))
            webhook.deliveries.add(task)
            task.add_done_callback(webhook.deliveries.discard)

    async def _webhook_deliver(
        self, bot: BotAccount, webhook: Webhook, seq: int, slots: asyncio.Semaphore
    ) -> None:
        entry = bot.queue.pending.get(seq)
        headers = {"Content-Type": "application/json"}
        if webhook.secret_token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = webhook.secret_token
        try:
            if entry is None:
                return
            for delay in (0.0, *self._retry_delays):
                if delay:
                    await asyncio.sleep(delay)
                if bot.webhook is not webhook or self._http is None:
                    return
                try:
                    async with self._http.post(
                        webhook.url,
                        data=entry.payload,
                        headers=headers,
                        timeout=aiohttp.ClientTimeout(total=self._webhook_timeout),
                    ) as response:
                        await response.read()
                        status, reason = response.status, response.reason
                except (aiohttp.ClientError, TimeoutError) as error:
                    webhook.last_error_date = self._now()
                    webhook.last_error_message = str(error) or type(error).__name__
                    continue
                if 200 <= status < 300:
                    entry.delivered = True
                    bot.queue.pending.pop(seq, None)
                    return
                webhook.last_error_date = self._now()
                webhook.last_error_message = f"Wrong response from the webhook: {status} {reason}"
            # Telegram gives up on an update eventually; the emulator does so quickly.
            bot.queue.pending.pop(seq, None)
            self.webhook_failures.append(entry.update_id)
        finally:
            slots.release()
            self._touch()

    # == Bot API: sending ===================================================================

    async def _api_send_message(self, bot: BotAccount, params: Params) -> dict[str, Any]:
        chat = self._target_chat(bot, params)
        source = params.text("text")
        if not source:
            raise bad_request("message text is empty")
        parsed = self._parse(source, params.text("parse_mode"), params.obj("entities"))
        if not parsed.text:
            raise bad_request("message text is empty")
        if len(parsed.text) > TEXT_LIMIT:
            raise bad_request("message is too long")
        markup = self._markup(params)
        reply = self._reply_target(chat, params)
        content: dict[str, Any] = {"text": parsed.text}
        if parsed.entities:
            content["entities"] = parsed.entities
        options = params.obj("link_preview_options")
        if isinstance(options, dict) and options:
            content["link_preview_options"] = options
        return self._bot_sends(
            bot, chat, "sendMessage", content, reply=reply, markup=markup, source=source,
            parse_mode=params.text("parse_mode"),
        ).json  # fmt: skip

    async def _api_send_photo(self, bot: BotAccount, params: Params) -> dict[str, Any]:
        chat = self._target_chat(bot, params)
        photo = await self._bot_photo(params.file("photo"))
        content: dict[str, Any] = {"photo": photo}
        source = self._caption_into(content, params)
        if params.flag("has_spoiler"):
            content["has_media_spoiler"] = True
        markup = self._markup(params)
        reply = self._reply_target(chat, params)
        return self._bot_sends(
            bot, chat, "sendPhoto", content, reply=reply, markup=markup, source=source,
            parse_mode=params.text("parse_mode"),
        ).json  # fmt: skip

    async def _api_send_document(self, bot: BotAccount, params: Params) -> dict[str, Any]:
        chat = self._target_chat(bot, params)
        content: dict[str, Any] = {"document": self._bot_document(params.file("document"))}
        source = self._caption_into(content, params)
        markup = self._markup(params)
        reply = self._reply_target(chat, params)
        return self._bot_sends(
            bot, chat, "sendDocument", content, reply=reply, markup=markup, source=source,
            parse_mode=params.text("parse_mode"),
        ).json  # fmt: skip

    async def _api_send_location(self, bot: BotAccount, params: Params) -> dict[str, Any]:
        chat = self._target_chat(bot, params)
        latitude, longitude = params.number("latitude"), params.number("longitude")
        if latitude is None or not -90 <= latitude <= 90:
            raise bad_request("wrong latitude specified")
        if longitude is None or not -180 <= longitude <= 180:
            raise bad_request("wrong longitude specified")
        location: dict[str, Any] = {"latitude": latitude, "longitude": longitude}
        accuracy = params.number("horizontal_accuracy")
        if accuracy is not None:
            location["horizontal_accuracy"] = accuracy
        markup = self._markup(params)
        reply = self._reply_target(chat, params)
        return self._bot_sends(
            bot, chat, "sendLocation", {"location": location}, reply=reply, markup=markup
        ).json

    async def _api_send_media_group(self, bot: BotAccount, params: Params) -> list[dict[str, Any]]:
        chat = self._target_chat(bot, params)
        media = params.obj("media", what="media JSON object")
        if not isinstance(media, list) or not 2 <= len(media) <= 10:
            raise bad_request("media group must contain 2-10 items")
        items: list[tuple[dict[str, Any], str | None, str | None]] = []
        for item in media:  # validate every item before sending any: no half albums
            if not isinstance(item, dict) or item.get("type") not in ("photo", "document"):
                raise bad_request("unsupported media type in the media group")
            file = _item_file(item, params)
            if item["type"] == "photo":
                content: dict[str, Any] = {"photo": await self._bot_photo(file)}
            else:
                content = {"document": self._bot_document(file)}
            item_params = Params(item, params.uploads)
            source = self._caption_into(content, item_params)
            items.append((content, source, item_params.text("parse_mode")))
        reply = self._reply_target(chat, params)
        group_id = str(next(self._media_group_ids))
        return [
            self._bot_sends(
                bot, chat, "sendMediaGroup", {**content, "media_group_id": group_id},
                reply=reply, markup=None, source=source, parse_mode=parse_mode,
            ).json
            for content, source, parse_mode in items
        ]  # fmt: skip

    async def _api_send_chat_action(self, bot: BotAccount, params: Params) -> bool:
        self._target_chat(bot, params)
        if not params.text("action"):
            raise bad_request("action is empty")
        return True

    # == Bot API: editing ===================================================================

    def _own_message(self, bot: BotAccount, params: Params, verb: str) -> tuple[Chat, dict]:
        if params.text("inline_message_id"):
            raise bad_request("inline messages are not supported by the emulator")
        chat = self._target_chat(bot, params)
        message_id = params.integer("message_id", required=True)
        assert message_id is not None
        message = self._messages.get((chat.id, message_id))
        if message is None:
            raise bad_request(f"message to {verb} not found")
        return chat, message

    def _store_edit(
        self,
        bot: BotAccount,
        chat: Chat,
        old: dict[str, Any],
        new: dict[str, Any],
        method: str,
        *,
        source: str | None = None,
        parse_mode: str | None = None,
    ) -> dict[str, Any]:
        if old.get("from", {}).get("id") != bot.id:
            raise bad_request("message can't be edited")
        unchanged = all(
            new.get(key) == old.get(key)
            for key in ("text", "entities", "caption", "caption_entities", "reply_markup")
        )
        if unchanged:
            raise bad_request(_NOT_MODIFIED)
        new["edit_date"] = self._now()
        self._messages[(chat.id, new["message_id"])] = new
        self._record(bot, chat, method, new, source=source, parse_mode=parse_mode, kind="edit")
        return new

    async def _api_edit_message_text(self, bot: BotAccount, params: Params) -> dict[str, Any]:
        chat, old = self._own_message(bot, params, "edit")
        source = params.text("text")
        if not source:
            raise bad_request("message text is empty")
        if "text" not in old:
            raise bad_request("there is no text in the message to edit")
        parsed = self._parse(source, params.text("parse_mode"), params.obj("entities"))
        if not parsed.text:
            raise bad_request("message text is empty")
        if len(parsed.text) > TEXT_LIMIT:
            raise bad_request("message is too long")
        new = {k: v for k, v in old.items() if k not in ("entities", "reply_markup", "edit_date")}
        new["text"] = parsed.text
        if parsed.entities:
            new["entities"] = parsed.entities
        _put_inline_markup(new, self._markup(params))
        return self._store_edit(
            bot, chat, old, new, "editMessageText", source=source,
            parse_mode=params.text("parse_mode"),
        )  # fmt: skip

    async def _api_edit_message_caption(self, bot: BotAccount, params: Params) -> dict[str, Any]:
        chat, old = self._own_message(bot, params, "edit")
        if not any(key in old for key in ("photo", "document", "video", "audio", "animation")):
            raise bad_request("there is no caption in the message to edit")
        new = {
            k: v
            for k, v in old.items()
            if k not in ("caption", "caption_entities", "reply_markup", "edit_date")
        }
        source = self._caption_into(new, params)
        _put_inline_markup(new, self._markup(params))
        return self._store_edit(
            bot, chat, old, new, "editMessageCaption", source=source,
            parse_mode=params.text("parse_mode"),
        )  # fmt: skip

    async def _api_edit_message_reply_markup(
        self, bot: BotAccount, params: Params
    ) -> dict[str, Any]:
        chat, old = self._own_message(bot, params, "edit")
        new = {k: v for k, v in old.items() if k not in ("reply_markup", "edit_date")}
        _put_inline_markup(new, self._markup(params))
        return self._store_edit(bot, chat, old, new, "editMessageReplyMarkup")

    async def _api_delete_message(self, bot: BotAccount, params: Params) -> bool:
        chat, message = self._own_message(bot, params, "delete")
        own = message.get("from", {}).get("id") == bot.id
        if not own and not (chat.type == "private" or bot.id in chat.bot_admins):
            raise bad_request("message can't be deleted")
        del self._messages[(chat.id, message["message_id"])]
        self.deleted.append((chat.id, message["message_id"]))
        self._emit(
            EmulatorEvent(
                actor="bot", kind="delete", who=bot.username, chat_id=chat.id,
                chat_title=chat.title, message_id=message["message_id"],
            )
        )  # fmt: skip
        return True

    # == Bot API: callbacks, files, commands, chats ========================================

    async def _api_answer_callback_query(self, bot: BotAccount, params: Params) -> bool:
        query_id = params.text("callback_query_id") or ""
        owner, chat = self._open_queries.get(query_id, (None, None))
        if owner != bot.id or chat is None:
            raise bad_request(_CALLBACK_EXPIRED)
        del self._open_queries[query_id]
        answer: dict[str, Any] = {
            "callback_query_id": query_id,
            "text": params.text("text"),
            "show_alert": params.flag("show_alert"),
            "url": params.text("url"),
            "cache_time": params.integer("cache_time") or 0,
        }
        self.callback_answers[query_id] = answer
        self._emit(
            EmulatorEvent(
                actor="bot", kind="answer", who=bot.username, chat_id=chat.id,
                chat_title=chat.title,
                text=answer["text"], extra={"show_alert": answer["show_alert"]},
            )
        )  # fmt: skip
        return True

    async def _api_get_file(self, bot: BotAccount, params: Params) -> dict[str, Any]:
        stored = self.files.get(params.text("file_id") or "")
        if stored is None:
            raise bad_request("invalid file_id")
        if stored.size > GETFILE_LIMIT:
            raise bad_request("file is too big")
        return stored.file_json()

    async def _api_set_my_commands(self, bot: BotAccount, params: Params) -> bool:
        commands = params.obj("commands")
        if not isinstance(commands, list):
            raise bad_request("commands must be a list")
        for command in commands:
            name = command.get("command", "") if isinstance(command, dict) else ""
            if not _COMMAND_RE.fullmatch(name):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(command.get("description", "")) <= 256:
                raise bad_request("command description must be 1-256 characters")
        bot.commands[_commands_key(params)] = [
            {"command": c["command"], "description": c["description"]} for c in commands
        ]
        return True

    async def _api_get_my_commands(self, bot: BotAccount, params: Params) -> list[dict[str, Any]]:
        return bot.commands.get(_commands_key(params), [])

    async def _api_delete_my_commands(self, bot: BotAccount, params: Params) -> bool:
        bot.commands.pop(_commands_key(params), None)
        return True

    async def _api_get_chat(self, bot: BotAccount, params: Params) -> dict[str, Any]:
        chat = self._find_chat(params)
        return {
            **chat.json,
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }

    async def _api_get_chat_member(self, bot: BotAccount, params: Params) -> dict[str, Any]:
        chat = self._find_chat(params)
        user_id = params.integer("user_id", required=True)
        if user_id in self._bots_by_id:
            account = self._bots_by_id[user_id]
            if user_id in chat.bot_admins:
                return _administrator(account.json)
            status = "member" if user_id in chat.bots else "left"
            return {"status": status, "user": account.json}
        person = self._users.get(user_id or 0)
        if person is None:
            raise bad_request("user not found")
        if user_id in chat.admins:
            return _administrator(person.json)
        status = "member" if user_id in chat.members else "left"
        return {"status": status, "user": person.json}

    # == helpers for bot requests ===========================================================

    def _now(self) -> int:
        return int(self._clock())

    def _find_chat(self, params: Params, name: str = "chat_id") -> Chat:
        raw = params.raw(name)
        if raw is None or raw == "":
            raise bad_request(f"{name} is empty")
        chat: Chat | None
        if isinstance(raw, str) and raw.startswith("@"):
            chat = self._chats_by_username.get(raw[1:].lower())
        else:
            number = _as_int(raw)
            chat = self._chats.get(number) if number is not None else None
        if chat is None:
            raise bad_request("chat not found")
        return chat

    def _target_chat(self, bot: BotAccount, params: Params) -> Chat:
        """The chat a bot writes to, after Telegram's checks (blocked, never started...)."""
        chat = self._find_chat(params)
        if chat.type == "private":
            if chat.id in bot.blocked:
                raise forbidden("bot was blocked by the user")
            if chat.id not in bot.started:
                raise forbidden("bot can't initiate conversation with a user")
        elif bot.id not in chat.bots:
            raise forbidden(f"bot is not a member of the {chat.type} chat")
        return chat

    def _parse(self, source: str, parse_mode: str | None, entities: Any) -> ParsedText:
        mode = (parse_mode or "").lower()
        if mode == "html":
            try:
                parsed = parse_html(source, strict_ampersand=self._strict_html)
            except EntityParseError as error:
                raise bad_request(f"can't parse entities: {error}") from None
        else:
            # MarkdownV2/Markdown are not parsed: the text is kept as sent (see README).
            parsed = ParsedText(source, list(entities) if isinstance(entities, list) else [])
        return trim(parsed)

    def _caption_into(self, content: dict[str, Any], params: Params) -> str | None:
        source = params.text("caption")
        if not source:
            return None
        parsed = self._parse(source, params.text("parse_mode"), params.obj("caption_entities"))
        if len(parsed.text) > CAPTION_LIMIT:
            raise bad_request("message caption is too long")
        if parsed.text:
            content["caption"] = parsed.text
        if parsed.entities:
            content["caption_entities"] = parsed.entities
        if params.flag("show_caption_above_media"):
            content["show_caption_above_media"] = True
        return source

    def _markup(self, params: Params) -> dict[str, Any] | None:
        markup = params.obj("reply_markup", what="reply keyboard markup JSON object")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise bad_request("can't parse reply keyboard markup JSON object")
        rows = markup.get("inline_keyboard")
        if rows is None:
            return markup
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise bad_request("can't parse inline keyboard markup JSON object")
        for row in rows:
            for button in row:
                if not isinstance(button, dict) or not button.get("text"):
                    raise bad_request("can't parse inline keyboard button: text must be non-empty")
                data = button.get("callback_data")
                if data is not None:
                    if not 1 <= len(str(data).encode("utf-8")) <= CALLBACK_DATA_LIMIT:
                        raise bad_request("BUTTON_DATA_INVALID")
                elif not any(key in button for key in _BUTTON_ACTIONS):
                    raise bad_request(
                        "can't parse inline keyboard button: "
                        "Text buttons are unallowed in the inline keyboard"
                    )
        return markup

    def _reply_target(self, chat: Chat, params: Params) -> dict[str, Any] | None:
        reply = params.obj("reply_parameters")
        if not isinstance(reply, dict):
            message_id = params.integer("reply_to_message_id")
            if message_id is None:
                return None
            reply = {
                "message_id": message_id,
                "allow_sending_without_reply": params.flag("allow_sending_without_reply"),
            }
        target_chat = chat
        if reply.get("chat_id") is not None:
            target_chat = self._find_chat(Params({"chat_id": reply["chat_id"]}, {}))
        message = self._messages.get((target_chat.id, _as_int(reply.get("message_id")) or 0))
        if message is None:
            if reply.get("allow_sending_without_reply"):
                return None
            raise bad_request("message to be replied not found")
        return _reply_snapshot(message)

    async def _bot_photo(self, file: Upload | str | None) -> list[dict[str, Any]]:
        if file is None:
            raise bad_request("there is no photo in the request")
        if isinstance(file, str):
            if file.startswith(("http://", "https://")):
                raise bad_request("failed to get HTTP URL content")
            photo = self.files.photo_set(file)
            if photo is None:
                if self.files.get(file) is not None:
                    raise bad_request("type of file mismatch")
                raise bad_request("wrong file identifier/HTTP URL specified")
            return [size.photo_size_json() for size in photo]
        if not file.data:
            raise bad_request("file must be non-empty")
        cached = self.files.cached_photo(file.data)
        if cached is None:
            try:
                sizes = await asyncio.to_thread(recompress, file.data)
            except ImageUndecodable:
                raise bad_request("IMAGE_PROCESS_FAILED") from None
            cached = self.files.add_photo(file.data, sizes)
        elif self.files.is_raw(file.data):
            raise bad_request("IMAGE_PROCESS_FAILED")
        return [size.photo_size_json() for size in cached]

    def _bot_document(self, file: Upload | str | None) -> dict[str, Any]:
        if file is None:
            raise bad_request("there is no document in the request")
        if isinstance(file, str):
            if file.startswith(("http://", "https://")):
                raise bad_request("failed to get HTTP URL content")
            stored = self.files.get(file)
            if stored is None:
                raise bad_request("wrong file identifier/HTTP URL specified")
            return _document_json(stored, self.files.document_meta(stored.file_id))
        if not file.data:
            raise bad_request("file must be non-empty")
        stored = self.files.add_document(file.data, file_name=file.filename)
        meta = {
            "file_name": file.filename,
            "mime_type": guess_mime(file.filename, file.content_type),
        }
        self.files.set_document_meta(stored.file_id, meta)
        return _document_json(stored, meta)

    def _new_message(
        self, chat: Chat, sender: dict[str, Any], content: dict[str, Any],
        reply: dict[str, Any] | None,
    ) -> dict[str, Any]:  # fmt: skip
        message_id = chat.next_message_id
        chat.next_message_id += 1
        message: dict[str, Any] = {
            "message_id": message_id,
            "from": sender,
            "chat": chat.json,
            "date": self._now(),
        }
        if reply is not None:
            message["reply_to_message"] = reply
        message.update(content)
        self._messages[(chat.id, message_id)] = message
        chat.message_ids.append(message_id)
        return message

    def _bot_sends(
        self,
        bot: BotAccount,
        chat: Chat,
        method: str,
        content: dict[str, Any],
        *,
        reply: dict[str, Any] | None,
        markup: dict[str, Any] | None,
        source: str | None = None,
        parse_mode: str | None = None,
    ) -> BotMessage:
        message = self._new_message(chat, bot.json, content, reply)
        _put_inline_markup(message, markup)
        chat.last_bot_sender = bot.id
        return self._record(
            bot, chat, method, message, source=source, parse_mode=parse_mode, kind="send",
            markup=markup,
        )  # fmt: skip

    def _record(
        self,
        bot: BotAccount,
        chat: Chat,
        method: str,
        message: dict[str, Any],
        *,
        source: str | None,
        parse_mode: str | None,
        kind: str,
        markup: dict[str, Any] | None = None,
    ) -> BotMessage:
        reply = message.get("reply_to_message")
        record = BotMessage(
            chat_id=chat.id,
            message_id=message["message_id"],
            method=method,
            json=message,
            bot_id=bot.id,
            text=message.get("text"),
            caption=message.get("caption"),
            source=source,
            parse_mode=parse_mode,
            reply_markup=markup if markup is not None else message.get("reply_markup"),
            reply_to=reply["message_id"] if reply else None,
        )
        self.sent.append(record)
        self._sent_by_chat[chat.id].append(record)
        self._emit(
            EmulatorEvent(
                actor="bot", kind=kind, who=bot.username, chat_id=chat.id,
                chat_title=chat.title, text=record.body or _describe_media(message),
                buttons=buttons_of(record.reply_markup), message_id=record.message_id,
            )
        )  # fmt: skip
        self._notify()
        return record

    def _emit(self, event: EmulatorEvent) -> None:
        for listener in self._listeners:
            try:
                outcome = listener(event)
                if inspect.isawaitable(outcome):
                    task = asyncio.ensure_future(outcome)
                    task.add_done_callback(_log_listener_failure)
            except Exception:  # a broken transcript printer must not break the bot's requests
                log.exception("emulator event listener failed")

    # == users' side (called by players.User) ===============================================

    def _bot(self, bot: dict[str, Any] | str | int | None = None) -> BotAccount:
        if bot is None:
            if self._default_bot is None:
                raise RuntimeError("call emulator.add_bot(token) first")
            return self._default_bot
        if isinstance(bot, dict):
            return self._bots_by_id[bot["id"]]
        if isinstance(bot, int):
            return self._bots_by_id[bot]
        if bot in self._bots:
            return self._bots[bot]
        for account in self._bots.values():
            if account.username.lower() == bot.lstrip("@").lower():
                return account
        raise KeyError(f"no bot {bot!r}")

    def _chat_id(self, chat: Group | User | int) -> int:
        return chat if isinstance(chat, int) else chat.id

    def _chat(self, chat: Group | User | int) -> Chat:
        found = self._chats.get(self._chat_id(chat))
        if found is None:
            raise KeyError(f"unknown chat {chat!r}")
        return found

    def _chat_for(self, user: User, chat: Group | User | int) -> Chat:
        target = self._chat(chat)
        if target.type == "private":
            if target.id != user.id:
                raise ValueError(f"{user} can only write to the bot in their own private chat")
            bot = self._bot()
            if user.id in bot.blocked:
                raise ValueError(f"{user} blocked the bot; call start_bot() to unblock it")
            bot.started.add(user.id)  # writing to a bot opens the conversation
        elif user.id not in target.members:
            raise ValueError(f"{user} is not a member of {target.title}; use members=/join()")
        return target

    def _reply_of(self, chat: Chat, reply_to: MessageLike | int | None) -> dict[str, Any] | None:
        if reply_to is None:
            return None
        message_id = reply_to if isinstance(reply_to, int) else _message_key(reply_to)[1]
        message = self._messages.get((chat.id, message_id))
        if message is None:
            raise LookupError(f"no message {message_id} in {chat.title} to reply to")
        return _reply_snapshot(message)

    def _push(self, bot: BotAccount, kind: str, body: dict[str, Any]) -> int | None:
        if not bot.accepts(kind):
            return None
        return bot.queue.push(kind, body)

    def _bot_sees(self, bot: BotAccount, chat: Chat, message: dict[str, Any]) -> bool:
        """Telegram's privacy mode for group messages."""
        if bot.can_read_all_group_messages or bot.id in chat.bot_admins:
            return True
        if any(key in message for key in _SERVICE_KEYS):
            return True
        reply = message.get("reply_to_message")
        if reply and reply.get("from", {}).get("id") == bot.id:
            return True
        text = message.get("text") or message.get("caption") or ""
        if not text.startswith("/"):
            return False
        command = text.split(maxsplit=1)[0]
        if "@" in command:
            return command.split("@", 1)[1].lower() == bot.username.lower()
        # A bare /command reaches the bot that spoke last (any bot, if it is the only one).
        return len(chat.bots) == 1 or chat.last_bot_sender in (None, bot.id)

    def _dispatch(self, chat: Chat, message: dict[str, Any]) -> None:
        if chat.type == "private":
            self._push(self._bot(), "message", message)
            return
        for bot_id in chat.bots:
            bot = self._bots_by_id[bot_id]
            if self._bot_sees(bot, chat, message):
                self._push(bot, "message", message)

    def _user_event(
        self, user: User, chat: Chat, kind: str, text: str | None, message_id: int | None = None
    ) -> None:
        self._emit(
            EmulatorEvent(
                actor="user", kind=kind, who=user.full_name, chat_id=chat.id,
                chat_title=chat.title, text=text, message_id=message_id,
            )
        )  # fmt: skip

    def _user_posts(
        self,
        user: User,
        chat: Chat,
        content: dict[str, Any],
        *,
        reply_to: MessageLike | int | None,
        kind: str,
        event_text: str | None,
    ) -> MessageRef:
        message = self._new_message(chat, user.json, content, self._reply_of(chat, reply_to))
        self._dispatch(chat, message)
        self._user_event(user, chat, kind, event_text, message["message_id"])
        self._notify()
        return MessageRef(chat.id, message["message_id"], message)

    async def _user_text(
        self,
        user: User,
        chat: Group | User | int,
        text: str,
        *,
        reply_to: MessageLike | int | None,
    ) -> MessageRef:
        if not text.strip():
            raise ValueError("Telegram clients do not send empty messages")
        if self.client_checks and len(text) > TEXT_LIMIT:
            raise ValueError("Telegram clients split text longer than 4096 characters")
        target = self._chat_for(user, chat)
        content: dict[str, Any] = {"text": text}
        if entities := command_entities(text):
            content["entities"] = entities
        return self._user_posts(
            user, target, content, reply_to=reply_to, kind="text", event_text=text
        )

    async def _user_photo_sizes(self, image: bytes) -> list[dict[str, Any]]:
        if not image:
            raise ValueError("an empty photo cannot be sent")
        photo = self.files.cached_photo(image)
        if photo is None:
            try:
                sizes: list[tuple[bytes, int, int]] | None = await asyncio.to_thread(
                    recompress, image
                )
            except ImageUndecodable:
                sizes = None  # Telegram would still show something; keep the raw bytes
            photo = self.files.add_photo(image, sizes)
        return [size.photo_size_json() for size in photo]

    def _caption_content(self, content: dict[str, Any], caption: str | None) -> None:
        if caption is None or not caption.strip():
            return
        if self.client_checks and len(caption) > USER_CAPTION_LIMIT:
            raise ValueError("Telegram clients do not send captions over 4096 characters")
        content["caption"] = caption
        if entities := command_entities(caption):
            content["caption_entities"] = entities

    async def _user_photo(
        self,
        user: User,
        chat: Group | User | int,
        image: bytes,
        *,
        caption: str | None,
        reply_to: MessageLike | int | None,
    ) -> MessageRef:
        target = self._chat_for(user, chat)
        content: dict[str, Any] = {"photo": await self._user_photo_sizes(image)}
        self._caption_content(content, caption)
        return self._user_posts(
            user, target, content, reply_to=reply_to, kind="photo", event_text=caption
        )

    async def _user_album(
        self, user: User, chat: Group | User | int, images: list[bytes], *, caption: str | None
    ) -> list[MessageRef]:
        if not 2 <= len(images) <= 10:
            raise ValueError("an album holds 2-10 photos")
        target = self._chat_for(user, chat)
        photos = [await self._user_photo_sizes(image) for image in images]
        group_id = str(next(self._media_group_ids))
        sent = []
        for index, photo in enumerate(photos):
            content: dict[str, Any] = {"media_group_id": group_id, "photo": photo}
            if index == 0:
                self._caption_content(content, caption)
            sent.append(
                self._user_posts(
                    user, target, content, reply_to=None, kind="album",
                    event_text=caption if index == 0 else None,
                )
            )  # fmt: skip
        return sent

    async def _user_document(
        self,
        user: User,
        chat: Group | User | int,
        data: bytes,
        *,
        file_name: str,
        mime_type: str,
        caption: str | None,
        reply_to: MessageLike | int | None,
    ) -> MessageRef:
        if not data:
            raise ValueError("an empty file cannot be sent")
        target = self._chat_for(user, chat)
        stored = self.files.add_document(data, file_name=file_name)
        meta = {"file_name": file_name, "mime_type": mime_type}
        self.files.set_document_meta(stored.file_id, meta)
        content: dict[str, Any] = {"document": _document_json(stored, meta)}
        self._caption_content(content, caption)
        return self._user_posts(
            user, target, content, reply_to=reply_to, kind="document",
            event_text=caption or file_name,
        )  # fmt: skip

    async def _user_sticker(
        self, user: User, chat: Group | User | int, *, emoji: str
    ) -> MessageRef:
        target = self._chat_for(user, chat)
        stored = self.files.add_document(f"sticker {emoji}".encode(), file_name="sticker.webp")
        sticker = {
            **_document_json(stored, None), "type": "regular", "width": 512, "height": 512,
            "is_animated": False, "is_video": False, "emoji": emoji,
        }
        return self._user_posts(
            user, target, {"sticker": sticker}, reply_to=None, kind="sticker", event_text=emoji
        )

    async def _user_location(
        self,
        user: User,
        chat: Group | User | int,
        latitude: float,
        longitude: float,
        *,
        reply_to: MessageLike | int | None,
    ) -> MessageRef:
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            raise ValueError("latitude/longitude out of range")
        target = self._chat_for(user, chat)
        content = {"location": {"latitude": latitude, "longitude": longitude}}
        return self._user_posts(
            user, target, content, reply_to=reply_to, kind="location",
            event_text=f"📍 {latitude:.6f}, {longitude:.6f}",
        )  # fmt: skip

    async def _user_venue(
        self,
        user: User,
        chat: Group | User | int,
        latitude: float,
        longitude: float,
        *,
        title: str,
        address: str,
        reply_to: MessageLike | int | None,
    ) -> MessageRef:
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            raise ValueError("latitude/longitude out of range")
        target = self._chat_for(user, chat)
        location = {"latitude": latitude, "longitude": longitude}
        # Telegram sends a venue with its location also in the message's `location` field.
        content = {
            "location": location,
            "venue": {"location": location, "title": title, "address": address},
        }
        return self._user_posts(
            user, target, content, reply_to=reply_to, kind="venue",
            event_text=f"📍 {title}, {address}",
        )  # fmt: skip

    def _callback(
        self, user: User, bot: BotAccount, chat: Chat, message: dict[str, Any], data: str,
        *, label: str | None = None,
    ) -> str:
        query_id = str(next(self._query_ids))
        self._open_queries[query_id] = (bot.id, chat)
        self._push(
            bot,
            "callback_query",
            {
                "id": query_id,
                "from": user.json,
                "message": message,
                "chat_instance": str(abs(hash((chat.id, bot.id))) % 10**18),
                "data": data,
            },
        )
        self._emit(
            EmulatorEvent(
                actor="user", kind="press", who=user.full_name, chat_id=chat.id,
                chat_title=chat.title, text=f"[ {label} ]" if label else data,
                message_id=message["message_id"], extra={"data": data},
            )
        )  # fmt: skip
        self._notify()
        return query_id

    async def _press(
        self, user: User, message: MessageLike, *, text: str | None, data: str | None
    ) -> str:
        chat_id, message_id = _message_key(message)
        chat = self._chat(chat_id)
        current = self._messages.get((chat_id, message_id))
        if current is None:
            raise LookupError(f"message {message_id} in {chat.title} no longer exists")
        rows = (current.get("reply_markup") or {}).get("inline_keyboard", [])
        buttons = [button for row in rows for button in row]
        for button in buttons:
            if text is not None and button.get("text") != text:
                continue
            if data is not None and button.get("callback_data") != data:
                continue
            if "callback_data" not in button:
                continue
            sender = current.get("from", {}).get("id")
            return self._callback(
                user, self._bot(sender), chat, current, button["callback_data"],
                label=button.get("text"),
            )
        labels = [(b.get("text"), b.get("callback_data")) for b in buttons]
        raise LookupError(f"no button text={text!r} data={data!r}; the message has {labels}")

    async def _press_forged(
        self, user: User, message: MessageLike | int, data: str, *, chat: Group | User | int | None
    ) -> str:
        if isinstance(message, int):
            chat_id, message_id = self._chat_id(chat if chat is not None else user), message
        else:
            chat_id, message_id = _message_key(message)
        target = self._chat(chat_id)
        current = self._messages.get((chat_id, message_id))
        if current is None:
            # A message the bot can no longer see: Telegram sends an InaccessibleMessage.
            shown: dict[str, Any] = {"chat": target.json, "message_id": message_id, "date": 0}
            bot = self._bot()
        else:
            shown = current
            sender = current.get("from", {})
            bot = self._bot(sender["id"] if sender.get("is_bot") else None)
        return self._callback(user, bot, target, shown, data)

    async def _start_bot(self, user: User) -> MessageRef:
        bot = self._bot()
        chat = self._chats[user.id]
        if user.id in bot.blocked:
            bot.blocked.discard(user.id)
            self._member_update(bot, chat, user, "kicked", "member")
        bot.started.add(user.id)
        content = {"text": "/start", "entities": command_entities("/start")}
        return self._user_posts(
            user, chat, content, reply_to=None, kind="start", event_text="/start"
        )

    async def _block_bot(self, user: User) -> None:
        bot = self._bot()
        chat = self._chats[user.id]
        bot.blocked.add(user.id)
        self._member_update(bot, chat, user, "member", "kicked")
        self._user_event(user, chat, "block", None)
        self._notify()

    async def _add_bot_to(self, user: User, group: Group) -> None:
        bot = self._bot()
        chat = self._chat(group)
        was_member = bot.id in chat.bots
        chat.bots.add(bot.id)
        self._member_update(bot, chat, user, "member" if was_member else "left", "member")
        service = {"new_chat_members": [bot.json], "new_chat_member": bot.json,
                   "new_chat_participant": bot.json}  # fmt: skip
        message = self._new_message(chat, user.json, service, None)
        self._dispatch(chat, message)
        self._user_event(user, chat, "add_bot", bot.username, message["message_id"])
        self._notify()

    async def _remove_bot_from(self, user: User, group: Group) -> None:
        bot = self._bot()
        chat = self._chat(group)
        chat.bots.discard(bot.id)
        self._member_update(bot, chat, user, "member", "kicked")
        self._user_event(user, chat, "remove_bot", bot.username)
        self._notify()

    async def _join(self, user: User, group: Group) -> MessageRef:
        chat = self._chat(group)
        chat.members.add(user.id)
        service = {"new_chat_members": [user.json], "new_chat_member": user.json,
                   "new_chat_participant": user.json}  # fmt: skip
        return self._user_posts(user, chat, service, reply_to=None, kind="join", event_text=None)

    def _member_update(self, bot: BotAccount, chat: Chat, user: User, old: str, new: str) -> None:
        self._push(
            bot,
            "my_chat_member",
            {
                "chat": chat.json,
                "from": user.json,
                "date": self._now(),
                "old_chat_member": _member_json(old, bot.json),
                "new_chat_member": _member_json(new, bot.json),
            },
        )

    def _describe_wait(
        self, chat_id: int | None, contains: str | None, method: str | None, timeout: float
    ) -> str:
        pool = self.sent if chat_id is None else self._sent_by_chat.get(chat_id, [])
        recent = [
            f"  {'(taken) ' if m.consumed else ''}{m.method} #{m.message_id} in {m.chat_id}: "
            f"{m.body[:80]!r}"
            for m in pool[-8:]
        ]
        wanted = ", ".join(
            part
            for part in (
                f"chat={chat_id}" if chat_id is not None else "",
                f"contains={contains!r}" if contains else "",
                f"method={method}" if method else "",
            )
            if part
        )
        seen = "\n".join(recent) or "  (nothing)"
        return f"no bot message ({wanted}) within {timeout}s; the bot sent there:\n{seen}"


# == module helpers =========================================================================

_SYSTEM_ADMIN = {
    "id": 1087968824,
    "is_bot": True,
    "first_name": "Group",
    "username": "GroupAnonymousBot",
}
_BUTTON_ACTIONS = (
    "url", "callback_data", "web_app", "login_url", "switch_inline_query",
    "switch_inline_query_current_chat", "switch_inline_query_chosen_chat", "copy_text",
    "callback_game", "pay",
)  # fmt: skip
_SERVICE_KEYS = (
    "new_chat_members", "left_chat_member", "new_chat_title", "new_chat_photo",
    "delete_chat_photo", "group_chat_created", "supergroup_chat_created",
    "migrate_to_chat_id", "migrate_from_chat_id", "pinned_message",
)  # fmt: skip


def _too_many(retry_after: int) -> ApiError:
    return ApiError(
        429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after}
    )


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(str(value))
    except ValueError:
        return None


def _administrator(user: dict[str, Any]) -> dict[str, Any]:
    rights = (
        "can_manage_chat", "can_delete_messages", "can_manage_video_chats",
        "can_restrict_members", "can_promote_members", "can_change_info", "can_invite_users",
        "can_post_stories", "can_edit_stories", "can_delete_stories", "can_pin_messages",
    )  # fmt: skip
    return {
        "status": "administrator",
        "user": user,
        "can_be_edited": False,
        "is_anonymous": False,
        "can_send_welcome_messages": False,
        **dict.fromkeys(rights, True),
    }


def _member_json(status: str, user: dict[str, Any]) -> dict[str, Any]:
    if status == "administrator":
        return _administrator(user)
    if status == "kicked":
        return {"status": "kicked", "user": user, "until_date": 0}
    return {"status": status, "user": user}


def _reply_snapshot(message: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in message.items() if k != "reply_to_message"}


def _put_inline_markup(message: dict[str, Any], markup: dict[str, Any] | None) -> None:
    # Messages carry only inline keyboards; reply keyboards live in the client.
    if markup is not None and "inline_keyboard" in markup:
        message["reply_markup"] = {"inline_keyboard": markup["inline_keyboard"]}


def _message_key(message: MessageLike) -> tuple[int, int]:
    if isinstance(message, BotMessage | MessageRef):
        return message.chat_id, message.message_id
    return message["chat"]["id"], message["message_id"]


def _item_file(item: dict[str, Any], params: Params) -> Upload | str | None:
    return Params({"media": item.get("media")}, params.uploads).file("media")


def _document_json(stored: StoredFile, meta: dict[str, Any] | None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_size": stored.size,
    }
    if meta:
        data.update({k: v for k, v in meta.items() if v})
    return data


def _commands_key(params: Params) -> tuple[str, str]:
    scope = params.obj("scope") or {"type": "default"}
    return dumps(scope).decode(), params.text("language_code") or ""


def _describe_media(message: dict[str, Any]) -> str | None:
    if "photo" in message:
        return "[photo]"
    if "document" in message:
        return f"[document {message['document'].get('file_name', '')}]"
    if "location" in message:
        location = message["location"]
        return f"📍 {location['latitude']:.6f}, {location['longitude']:.6f}"
    return None


def _log_listener_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("emulator event listener failed", exc_info=task.exception())


async def _read_params(request: web.Request) -> Params:
    values: dict[str, Any] = dict(request.query)
    uploads: dict[str, Upload] = {}
    if request.can_read_body:
        content_type = request.content_type
        if content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise bad_request("can't parse JSON request body") from None
            if not isinstance(body, dict):
                raise bad_request("JSON request body must be an object")
            values.update(body)
        elif content_type.startswith("multipart/"):
            reader = await request.multipart()
            async for part in reader:
                if not isinstance(part, aiohttp.BodyPartReader) or part.name is None:
                    continue
                if part.filename is not None:
                    uploads[part.name] = Upload(
                        part.filename,
                        part.headers.get(aiohttp.hdrs.CONTENT_TYPE),
                        bytes(await part.read(decode=True)),
                    )
                else:
                    values[part.name] = await part.text()
        elif content_type == "application/x-www-form-urlencoded":
            form = await request.post()
            values.update({key: value for key, value in form.items() if isinstance(value, str)})
    return Params(values, uploads)
