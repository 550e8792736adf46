"""The app factory: `create_app(settings)` wires routes, middleware and the lifespan.

The lifespan opens the database engine, Redis, queues and the object store, refuses to
start on an unmigrated database, and hands everything to handlers as `Services`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio.to_thread
from redis.asyncio import BlockingConnectionPool, Redis
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.templating import Jinja2Templates

import web
from service import i18n
from service.cluster.nodes import Node, Nodes
from service.cluster.placement import Placement
from service.cors import Cors
from service.db.engine import async_sessions, make_async_engine
from service.db.migrate import check_current
from service.error_handlers import exception_handlers
from service.live import ice
from service.live.channels import Channels
from service.live.rooms import Rooms
from service.live.spread import Spread
from service.locks import Heartbeat
from service.mail import open_transport
from service.metrics import Metrics
from service.middleware import BodyLimit, RequestContext, content_security_policy
from service.queue import Queues, redis_client
from service.ratelimit import RateLimiter
from service.routes import (
    api_auth,
    api_communities,
    api_live,
    api_moments,
    api_numbers,
    api_reels,
    api_resets,
    api_review,
    api_stories,
    api_webhooks,
    assets,
    brand,
    catalogs,
    live_socket,
    notices,
    objects,
    pages,
    pages_live,
    pages_reels,
    pages_resets,
    pages_stories,
    pages_webhooks,
    public,
    system,
)
from service.settings import Settings
from service.storage import open_store
from service.uploads import routes as tus_routes
from service.web import Services

WEB = Path(web.__file__).parent
UPLOAD_PATHS = ("/api/uploads",)  # resumable uploads police their own sizes
REDIS_CONNECTIONS = 512  # per node: room readers and page event streams each hold one


def create_app(settings: Settings) -> Starlette:
    metrics = Metrics()
    templates = Jinja2Templates(directory=WEB / "templates")
    i18n.install(templates.env)
    static = assets.StaticAssets(WEB / "static")
    templates.env.globals["static"] = static.url

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Services]]:
        engine = make_async_engine(settings.async_database_url)
        try:
            async with engine.connect() as conn:
                await conn.run_sync(check_current)
        except BaseException:
            await engine.dispose()
            raise
        # a burst (200 people chatting at once) waits for a connection rather than failing
        redis = Redis.from_pool(BlockingConnectionPool.from_url(
            settings.redis_url, max_connections=REDIS_CONNECTIONS, timeout=10,
            socket_connect_timeout=3, socket_timeout=10))
        store = open_store(settings)
        heartbeat = Heartbeat(redis)  # its instance id names this node everywhere
        node_ice = await ice.start(settings)
        nodes = Nodes(redis, Node(
            id=heartbeat.instance, url=settings.node_address,
            ice_addresses=ice.node_addresses(node_ice),
            rtc_udp_port=node_ice.mux.port if node_ice.mux is not None else None))
        rooms = Rooms(settings)
        spread = Spread(rooms, Placement(redis, heartbeat.instance), nodes,
                        settings.secret_key)
        nodes.on_lost(spread.forget)
        nodes.on_rejoin(spread.rejoin)
        services = Services(
            settings=settings, engine=engine, db=async_sessions(engine), redis=redis,
            queues=Queues(redis_client(settings.redis_url)), store=store,
            metrics=metrics, limiter=RateLimiter(redis), templates=templates,
            upload_sink=store.upload_sink(settings.spool_dir), heartbeat=heartbeat,
            rooms=rooms, channels=Channels(redis, heartbeat.instance),
            mailer=open_transport(settings), nodes=nodes, spread=spread,
        )
        await anyio.to_thread.run_sync(services.upload_sink.sweep)
        await services.heartbeat.start()
        nodes.on_lost(services.channels.lost)
        nodes.on_rejoin(services.channels.rejoined)
        await services.nodes.start()
        await spread.start()
        try:
            yield {"services": services}
        finally:
            await services.channels.close()  # first: a node going down ends no session
            await services.rooms.close()
            await spread.stop()
            await services.nodes.stop()
            node_ice.close()
            await services.mailer.close()
            await services.heartbeat.stop()
            await redis.aclose()
            services.queues.redis.close()
            await engine.dispose()

    app = Starlette(
        routes=[
            *system.routes,
            *api_auth.routes,
            *api_resets.routes,
            *api_communities.routes,
            *api_stories.routes,
            *api_review.routes,
            *api_reels.routes,
            *api_live.routes,
            *api_moments.routes,
            *api_webhooks.routes,
            *api_numbers.routes,
            *live_socket.routes,
            *tus_routes.routes,
            *objects.routes,
            *pages.routes,
            *pages_stories.routes,
            *pages_reels.routes,
            *pages_live.routes,
            *pages_resets.routes,
            *pages_webhooks.routes,
            *notices.routes,
            *public.routes,
            *brand.routes,
            *catalogs.routes,
            *assets.routes(static),
        ],
        middleware=[
            Middleware(RequestContext, metrics=metrics, csp=content_security_policy(settings)),
            Middleware(Cors, origins=settings.cors_origins),
            Middleware(BodyLimit, max_bytes=settings.max_body_bytes, exempt=UPLOAD_PATHS,
                       exempt_suffixes=("/assets",)),
        ],
        exception_handlers=exception_handlers(),
        lifespan=lifespan,
    )
    app.state.templates = templates  # error pages render before a handler has services
    return app
