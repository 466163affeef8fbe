"""The /scim/v2 route table, wrapped in the ScimPipeline."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from muster.errors import ScimError
from muster.web.scim_api import bulk, discovery, groups, searches, users
from muster.web.scim_api.pipeline import Endpoint, ScimPipeline
from muster.web.wiring import Wiring


def not_implemented(request: Request) -> Response:
    raise ScimError.not_implemented(f"{request.url.path.rsplit('/', 1)[-1]} is not supported")


def _base_url_route(endpoint: Endpoint, methods: list[str]) -> Route:
    """A route for the base URL itself: `/scim/v2/`, and `/scim/v2` without the slash."""
    route = Route("/", endpoint, methods=methods)
    route.path_regex = re.compile(r"^/?$")  # the route path of `/scim/v2` is ""
    return route


def scim_app(wiring: Wiring) -> ScimPipeline:
    """Build the /scim/v2 application."""
    routes = [
        # RFC 7644 §3.4.2.1: a query at the root covers every resource type, as /.search does.
        _base_url_route(searches.search_resources, methods=["GET"]),
        Route("/.search", searches.search_resources, methods=["POST"]),
        Route("/Users/.search", users.search_users, methods=["POST"]),
        Route("/Groups/.search", groups.search_groups, methods=["POST"]),
        Route("/Users", users.list_users, methods=["GET"]),
        Route("/Users", users.create_user, methods=["POST"]),
        Route("/Users/{user_id}", users.get_user, methods=["GET"]),
        Route("/Users/{user_id}", users.replace_user, methods=["PUT"]),
        Route("/Users/{user_id}", users.patch_user, methods=["PATCH"]),
        Route("/Users/{user_id}", users.delete_user, methods=["DELETE"]),
        Route("/Groups", groups.list_groups, methods=["GET"]),
        Route("/Groups", groups.create_group, methods=["POST"]),
        Route("/Groups/{group_id}", groups.get_group, methods=["GET"]),
        Route("/Groups/{group_id}", groups.replace_group, methods=["PUT"]),
        Route("/Groups/{group_id}", groups.patch_group, methods=["PATCH"]),
        Route("/Groups/{group_id}", groups.delete_group, methods=["DELETE"]),
        Route("/ServiceProviderConfig", discovery.get_service_provider_config, methods=["GET"]),
        Route("/ResourceTypes", discovery.list_resource_types, methods=["GET"]),
        Route("/ResourceTypes/{resource_type}", discovery.get_resource_type, methods=["GET"]),
        Route("/Schemas", discovery.list_schemas, methods=["GET"]),
        Route("/Schemas/{schema_id:path}", discovery.get_schema, methods=["GET"]),
        *(
            Route(path, discovery.refuse_write, methods=discovery.WRITE_METHODS)
            for path in (
                "/ServiceProviderConfig",
                "/ResourceTypes",
                "/ResourceTypes/{resource_type}",
                "/Schemas",
                "/Schemas/{schema_id:path}",
            )
        ),
        Route("/Bulk", bulk.run_bulk, methods=["POST"]),
        Route("/Me", not_implemented, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
    ]
    return ScimPipeline(routes, wiring)
