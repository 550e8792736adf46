"""WHIP, WHEP and their resources on any node: requests for a room another node serves are
forwarded to it (`cluster/proxy.py`), signed, and answered with its answer."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from service.cluster import auth, proxy
from service.cluster.nodes import Node
from service.web import Services


async def from_node(request: Request, svc: Services) -> bool:
    """Whether another node routed this request here already (signed as a node's)."""
    value = request.headers.get(auth.HEADER)
    if value is None:
        return False
    return auth.verify(svc.settings.secret_key, request.method, request.url.path,
                       await request.body(), value)


async def forward(request: Request, svc: Services, node: Node) -> Response:
    """The same request, served by `node`; raises `proxy.Unreachable`."""
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    answer = await proxy.send(node.url, svc.settings.secret_key, request.method, path,
                              request.headers, await request.body())
    headers = {name: value for name, value in answer.headers if name in proxy.ANSWERED}
    return Response(answer.body, status_code=answer.status, headers=headers)


def node_of(resource: str) -> str:
    """The node a WHIP/WHEP resource id names (`{node}.{token}`)."""
    return resource.split(".", 1)[0] if "." in resource else ""


async def resource_node(request: Request, svc: Services) -> Node | None:
    """Where the resource in the path lives, if not here (None: here, or nowhere)."""
    if await from_node(request, svc):
        return None
    node_id = node_of(request.path_params["resource"])
    if not node_id or node_id == svc.spread.node_id:
        return None
    return await svc.spread.nodes.get(node_id)
