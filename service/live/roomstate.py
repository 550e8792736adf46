"""One live session's room channel in Redis, shared by every node.

- `kumpul:room:{id}:events`, a stream of bounded length (XADD MAXLEN ~): every message
  people in the room see, in the one order all nodes deliver it in. An entry is `m` (the
  message's JSON), optionally `to` (deliver to this user's sockets only) and `op` (what each
  node does on its own: learn a stage token, let a guest go).
- beside it the state a newcomer is told: `presence` (a hash of connections, each
  `{node}:{n}` -> the person and their node), `hands` (a sorted set in the order hands went
  up, and `hand-names`), `muted` (a set), `invites` (stage token -> user), `guest`; and one
  sorted set per person and kind for the rate limits.

Changes that both alter state and tell the room (presence, hands) run as one script, so the
stream's last word always matches the state, whatever node made the change. Keys live a day
past their last write, and a minute once the session ends.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from redis.asyncio import Redis

STREAM_LENGTH = 5000  # entries kept; a node further behind than this skips ahead
KEEP_SECONDS = 24 * 3600
ENDED_SECONDS = 60
PEOPLE_SHOWN = 50

_PRESENCE = """
local op, field = ARGV[1], ARGV[2]
if op == 'set' then
  redis.call('hset', KEYS[1], field, ARGV[3])
elseif op == 'del' then
  if redis.call('hdel', KEYS[1], field) == 0 then return false end
else -- 'node': every connection of a lost node (fields start with '{node}:')
  local gone = 0
  for _, f in ipairs(redis.call('hkeys', KEYS[1])) do
    if string.sub(f, 1, #field) == field then redis.call('hdel', KEYS[1], f); gone = gone + 1 end
  end
  if gone == 0 then return false end
end
local users, names, count = {}, {}, 0
for _, v in ipairs(redis.call('hvals', KEYS[1])) do
  local p = cjson.decode(v)
  local uid = tostring(p.user_id)
  if not users[uid] then users[uid] = true; count = count + 1 end
  names[p.name] = true
end
local list = {}
for n in pairs(names) do list[#list + 1] = n end
table.sort(list)
local shown = {}
for i = 1, math.min(tonumber(ARGV[4]), #list) do shown[i] = cjson.encode(list[i]) end
local msg = '{"type":"presence","count":' .. count .. ',"people":['
  .. table.concat(shown, ',') .. ']}'
redis.call('xadd', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'm', msg)
for i = 1, 2 do redis.call('expire', KEYS[i], ARGV[6]) end
return msg
"""

_HANDS = """
local op, uid = ARGV[1], ARGV[2]
if op == 'up' then
  local t = redis.call('time')
  redis.call('zadd', KEYS[1], 'NX', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), uid)
  redis.call('hset', KEYS[2], uid, ARGV[3])
else
  local was = redis.call('zrem', KEYS[1], uid)
  redis.call('hdel', KEYS[2], uid)
  if was == 0 and ARGV[4] == 'if-changed' then return false end
end
local items = {}
for _, u in ipairs(redis.call('zrange', KEYS[1], 0, -1)) do
  local name = redis.call('hget', KEYS[2], u) or ''
  items[#items + 1] = '{"user_id":' .. u .. ',"name":' .. cjson.encode(name) .. '}'
end
local msg = '{"type":"hands","hands":[' .. table.concat(items, ',') .. ']}'
redis.call('xadd', KEYS[3], 'MAXLEN', '~', ARGV[5], '*', 'm', msg)
for i = 1, 3 do redis.call('expire', KEYS[i], ARGV[6]) end
return msg
"""

_GATE = """
if ARGV[5] == '1' and redis.call('sismember', KEYS[1], ARGV[1]) == 1 then return 'muted' end
local t = redis.call('time')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[2])
redis.call('zremrangebyscore', KEYS[2], '-inf', now - window)
if redis.call('zcard', KEYS[2]) >= tonumber(ARGV[3]) then return 'rate' end
redis.call('zadd', KEYS[2], now, ARGV[4])
redis.call('pexpire', KEYS[2], window)
return 'ok'
"""


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def node_sessions_key(node_id: str) -> str:
    """The sessions a node has (had) people in, so its presence can be cleared if it dies."""
    return f"kumpul:room-nodes:{node_id}"


Entry = tuple[str, dict[str, str]]


class RoomState:
    def __init__(self, redis: Redis, session_id: str) -> None:
        self.redis = redis
        self.session_id = session_id
        base = f"kumpul:room:{session_id}:"
        self.stream = base + "events"
        self.presence_key = base + "presence"
        self.hands_key, self.hand_names_key = base + "hands", base + "hand-names"
        self.muted_key = base + "muted"
        self.invites_key = base + "invites"
        self.guest_key = base + "guest"
        self._rate_base = base + "rate:"
        self._presence = redis.register_script(_PRESENCE)
        self._hands = redis.register_script(_HANDS)
        self._gate = redis.register_script(_GATE)

    # --- the stream ---------------------------------------------------------------------

    async def append(self, message: dict[str, Any] | None, *, to: int | None = None,
                     op: str | None = None, token: str | None = None) -> None:
        """One entry: a message for people (or only `to`'s sockets), and/or an `op` every
        node carries out itself."""
        fields = {}
        if message is not None:
            fields["m"] = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
        if to is not None:
            fields["to"] = str(to)
        if op is not None:
            fields["op"] = op
        if token is not None:
            fields["token"] = token
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(self.stream, fields, maxlen=STREAM_LENGTH, approximate=True)  # type: ignore[arg-type]
            pipe.expire(self.stream, KEEP_SECONDS)
            await pipe.execute()

    async def last_id(self) -> str:
        """The id of the newest entry ("0-0" for none): a reader starting now reads after it."""
        newest: Any = await self.redis.xrevrange(self.stream, count=1)
        return _text(newest[0][0]) if newest else "0-0"

    async def read(self, after: str, block_ms: int, count: int) -> list[Entry]:
        found: Any = await self.redis.xread({self.stream: after}, count=count, block=block_ms)
        return [(_text(entry_id), {_text(k): _text(v) for k, v in fields.items()})
                for _, entries in found or [] for entry_id, fields in entries]

    async def ended(self) -> None:
        """The session ended: its keys go a minute later (readers still see the end)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in (self.stream, self.presence_key, self.hands_key, self.hand_names_key,
                        self.muted_key, self.invites_key, self.guest_key):
                pipe.expire(key, ENDED_SECONDS)
            await pipe.execute()

    # --- presence -----------------------------------------------------------------------

    async def present(self, node_id: str, conn: int, user_id: int, name: str) -> None:
        """A connection joined on `node_id`; the room is told who is here."""
        entry = json.dumps({"user_id": user_id, "name": name, "node": node_id})
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.sadd(node_sessions_key(node_id), self.session_id)
            pipe.expire(node_sessions_key(node_id), KEEP_SECONDS)
            await pipe.execute()
        await self._presence(keys=[self.presence_key, self.stream],
                             args=["set", f"{node_id}:{conn}", entry, PEOPLE_SHOWN,
                                   STREAM_LENGTH, KEEP_SECONDS])

    async def absent(self, node_id: str, conn: int) -> None:
        await self._presence(keys=[self.presence_key, self.stream],
                             args=["del", f"{node_id}:{conn}", "", PEOPLE_SHOWN,
                                   STREAM_LENGTH, KEEP_SECONDS])

    async def clear_node(self, node_id: str) -> bool:
        """Everyone a lost node had here leaves; whether anyone did."""
        told = await self._presence(keys=[self.presence_key, self.stream],
                                    args=["node", f"{node_id}:", "", PEOPLE_SHOWN,
                                          STREAM_LENGTH, KEEP_SECONDS])
        return told is not None

    async def present_users(self) -> set[int]:
        return {int(json.loads(v)["user_id"])
                for v in await self.redis.hvals(self.presence_key)}

    async def is_here(self, user_id: int) -> bool:
        return user_id in await self.present_users()

    # --- hands, mutes, limits -----------------------------------------------------------

    async def hand(self, user_id: int, name: str | None, *, quiet: bool = False) -> None:
        """A hand goes up (`name` given) or down; the room gets the list, unless `quiet`
        and nothing changed."""
        await self._hands(keys=[self.hands_key, self.hand_names_key, self.stream],
                          args=["up" if name is not None else "down", user_id, name or "",
                                "if-changed" if quiet else "always", STREAM_LENGTH,
                                KEEP_SECONDS])

    async def hands(self) -> list[dict[str, Any]]:
        order = [_text(u) for u in await self.redis.zrange(self.hands_key, 0, -1)]
        names: Any = await self.redis.hmget(self.hand_names_key, order) if order else []
        return [{"user_id": int(u), "name": _text(n or b"")}
                for u, n in zip(order, names, strict=True)]

    async def muted(self, user_id: int) -> bool:
        return bool(await self.redis.sismember(self.muted_key, str(user_id)))

    async def mute(self, user_id: int, on: bool) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            if on:
                pipe.sadd(self.muted_key, str(user_id))
            else:
                pipe.srem(self.muted_key, str(user_id))
            pipe.expire(self.muted_key, KEEP_SECONDS)
            await pipe.execute()

    async def gate(self, user_id: int, what: str, rate: tuple[int, float], *,
                   check_muted: bool = True) -> str:
        """"muted", "rate" (over `rate`: count per seconds, sliding) or "ok" (counted)."""
        count, seconds = rate
        found = await self._gate(keys=[self.muted_key, f"{self._rate_base}{what}:{user_id}"],
                                 args=[user_id, int(seconds * 1000), count,
                                       secrets.token_hex(6), "1" if check_muted else "0"])
        return _text(found)

    # --- the stage ----------------------------------------------------------------------

    async def add_invite(self, token: str, user_id: int) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.invites_key, token, str(user_id))
            pipe.expire(self.invites_key, KEEP_SECONDS)
            await pipe.execute()

    async def invites(self) -> dict[str, int]:
        found = await self.redis.hgetall(self.invites_key)
        return {_text(k): int(v) for k, v in found.items()}

    async def clear_invites(self) -> None:
        await self.redis.delete(self.invites_key)

    async def guest(self) -> int | None:
        found = await self.redis.get(self.guest_key)
        return int(found) if found else None

    async def set_guest(self, user_id: int | None) -> None:
        if user_id is None:
            await self.redis.delete(self.guest_key)
        else:
            await self.redis.set(self.guest_key, str(user_id), ex=KEEP_SECONDS)
