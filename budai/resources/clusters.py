"""``client.clusters``: the clusters models can be deployed on, and their health."""

from __future__ import annotations

from functools import cached_property

from .._base_client import compact, path_segment
from .._types import NOT_GIVEN, Body, NotGiven, Query, RequestOptions, Timeout
from ..types import AsyncPaginator, Cluster, ClusterHealth, SyncPage
from ..types.cluster import ClusterProvider, ClusterStatus
from ._base import (
    AsyncAPIResource,
    Headers,
    SyncAPIResource,
    parser,
    to_async_response,
    to_async_streamed_response,
    to_response,
    to_streamed_response,
)

__all__ = ["AsyncClusters", "Clusters"]

_cluster = parser(Cluster)
_health = parser(ClusterHealth)


class Clusters(SyncAPIResource):
    """Clusters (read-only through the API)."""

    @cached_property
    def with_response(self) -> ClustersWithResponse:
        """The same methods, returning ``Response[T]`` (data plus HTTP metadata)."""
        return ClustersWithResponse(self)

    @cached_property
    def with_raw_response(self) -> ClustersWithResponse:
        """``with_response`` under openai-python's name."""
        return self.with_response

    @cached_property
    def with_streaming_response(self) -> ClustersWithStreamingResponse:
        """The same methods as context managers: ``with ... as response:`` yields
        ``Response[T]``, and a streamed body is closed when the block ends."""
        return ClustersWithStreamingResponse(self)

    def get(
        self,
        cluster_id: str,
        *,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        extra_body: Body | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> Cluster:
        """One cluster by id."""
        return self._client._request(
            "GET",
            f"/clusters/{path_segment(cluster_id, 'cluster_id')}",
            _cluster,
            options=RequestOptions(extra_headers, extra_query, extra_body, timeout),
        )

    def list(
        self,
        *,
        name: str | None = None,
        status: ClusterStatus | None = None,
        provider: ClusterProvider | None = None,
        limit: int | None = None,
        after: str | None = None,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        extra_body: Body | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> SyncPage[Cluster]:
        """Clusters matching the filters; iterating the page walks every following page."""
        query = compact(
            {"name": name, "status": status, "provider": provider, "limit": limit, "after": after}
        )
        return self._client._request_page(
            "/clusters",
            _cluster,
            query,
            RequestOptions(extra_headers, extra_query, extra_body, timeout),
        )

    def health(
        self,
        cluster_id: str,
        *,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        extra_body: Body | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> ClusterHealth:
        """Health and free capacity of a cluster."""
        return self._client._request(
            "GET",
            f"/clusters/{path_segment(cluster_id, 'cluster_id')}/health",
            _health,
            options=RequestOptions(extra_headers, extra_query, extra_body, timeout),
        )


class AsyncClusters(AsyncAPIResource):
    """Clusters (read-only through the API)."""

    @cached_property
    def with_response(self) -> AsyncClustersWithResponse:
        """The same methods, returning ``Response[T]`` (data plus HTTP metadata)."""
        return AsyncClustersWithResponse(self)

    @cached_property
    def with_raw_response(self) -> AsyncClustersWithResponse:
        """``with_response`` under openai-python's name."""
        return self.with_response

    @cached_property
    def with_streaming_response(self) -> AsyncClustersWithStreamingResponse:
        """The same methods as context managers: ``with ... as response:`` yields
        ``Response[T]``, and a streamed body is closed when the block ends."""
        return AsyncClustersWithStreamingResponse(self)

    async def get(
        self,
        cluster_id: str,
        *,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        extra_body: Body | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> Cluster:
        """One cluster by id."""
        return await self._client._request(
            "GET",
            f"/clusters/{path_segment(cluster_id, 'cluster_id')}",
            _cluster,
            options=RequestOptions(extra_headers, extra_query, extra_body, timeout),
        )

    def list(
        self,
        *,
        name: str | None = None,
        status: ClusterStatus | None = None,
        provider: ClusterProvider | None = None,
        limit: int | None = None,
        after: str | None = None,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        extra_body: Body | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> AsyncPaginator[Cluster]:
        """Clusters matching the filters: ``async for`` walks every page; ``await`` gives the
        first."""
        query = compact(
            {"name": name, "status": status, "provider": provider, "limit": limit, "after": after}
        )
        return self._client._paginator(
            "/clusters",
            _cluster,
            query,
            RequestOptions(extra_headers, extra_query, extra_body, timeout),
        )

    async def health(
        self,
        cluster_id: str,
        *,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        extra_body: Body | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> ClusterHealth:
        """Health and free capacity of a cluster."""
        return await self._client._request(
            "GET",
            f"/clusters/{path_segment(cluster_id, 'cluster_id')}/health",
            _health,
            options=RequestOptions(extra_headers, extra_query, extra_body, timeout),
        )


class ClustersWithResponse:
    def __init__(self, clusters: Clusters) -> None:
        self.get = to_response(clusters.get)
        self.list = to_response(clusters.list)
        self.health = to_response(clusters.health)


class AsyncClustersWithResponse:
    def __init__(self, clusters: AsyncClusters) -> None:
        self.get = to_async_response(clusters.get)
        self.list = to_async_response(clusters.list)
        self.health = to_async_response(clusters.health)


class ClustersWithStreamingResponse:
    def __init__(self, clusters: Clusters) -> None:
        self.get = to_streamed_response(clusters.get)
        self.list = to_streamed_response(clusters.list)
        self.health = to_streamed_response(clusters.health)


class AsyncClustersWithStreamingResponse:
    def __init__(self, clusters: AsyncClusters) -> None:
        self.get = to_async_streamed_response(clusters.get)
        self.list = to_async_streamed_response(clusters.list)
        self.health = to_async_streamed_response(clusters.health)
