"""Cursor pages: ``list()`` results that iterate over every item across pages.

The wire shape is ``{"object": "list", "data": [...], "has_more": bool, "next_cursor": str|null}``;
the next page is requested with ``after=<next_cursor>`` and the same filters. The fetch function
is supplied by the resource, so this module does no I/O of its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from typing import Any, Generic, Literal, TypeVar

__all__ = ["AsyncPage", "AsyncPaginator", "SyncPage"]

T = TypeVar("T")


class _PageBase(Generic[T]):
    object: Literal["list"]
    data: list[T]
    has_more: bool
    next_cursor: str | None
    _request_id: str | None
    """The ``x-request-id`` of the response this page came from."""

    def __init__(self, data: list[T], has_more: bool, next_cursor: str | None) -> None:
        self.object = "list"
        self.data = data
        self.has_more = has_more
        self.next_cursor = next_cursor
        self._request_id = None

    def has_next_page(self) -> bool:
        """Whether the server says there is another page."""
        return bool(self.has_more and self.next_cursor)

    def __len__(self) -> int:
        """Items on *this* page (iteration goes further)."""
        return len(self.data)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(items={len(self.data)}, has_more={self.has_more}, "
            f"next_cursor={self.next_cursor!r})"
        )


class SyncPage(_PageBase[T]):
    """One page of a list; ``for item in page`` walks this page and every following one."""

    def __init__(
        self,
        data: list[T],
        has_more: bool,
        next_cursor: str | None,
        fetch_next: Callable[[str], SyncPage[T]] | None = None,
    ) -> None:
        super().__init__(data, has_more, next_cursor)
        self._fetch_next = fetch_next

    def get_next_page(self) -> SyncPage[T]:
        """Request the following page (``RuntimeError`` if there is none)."""
        if not self.has_next_page() or self._fetch_next is None or self.next_cursor is None:
            raise RuntimeError("no next page; check has_next_page() first")
        return self._fetch_next(self.next_cursor)

    def iter_pages(self) -> Iterator[SyncPage[T]]:
        """This page, then each following page, requested lazily."""
        page: SyncPage[T] = self
        while True:
            yield page
            if not page.has_next_page():
                return
            page = page.get_next_page()

    def __iter__(self) -> Iterator[T]:
        for page in self.iter_pages():
            yield from page.data


class AsyncPage(_PageBase[T]):
    """One page of a list; ``async for item in page`` walks this page and every following one."""

    def __init__(
        self,
        data: list[T],
        has_more: bool,
        next_cursor: str | None,
        fetch_next: Callable[[str], Awaitable[AsyncPage[T]]] | None = None,
    ) -> None:
        super().__init__(data, has_more, next_cursor)
        self._fetch_next = fetch_next

    async def get_next_page(self) -> AsyncPage[T]:
        """Request the following page (``RuntimeError`` if there is none)."""
        if not self.has_next_page() or self._fetch_next is None or self.next_cursor is None:
            raise RuntimeError("no next page; check has_next_page() first")
        return await self._fetch_next(self.next_cursor)

    async def iter_pages(self) -> AsyncIterator[AsyncPage[T]]:
        """This page, then each following page, requested lazily."""
        page: AsyncPage[T] = self
        while True:
            yield page
            if not page.has_next_page():
                return
            page = await page.get_next_page()

    async def __aiter__(self) -> AsyncIterator[T]:
        async for page in self.iter_pages():
            for item in page.data:
                yield item


class AsyncPaginator(Generic[T]):
    """What the async ``list()`` returns: ``await`` it for the first page, or ``async for`` over
    it for every item across pages, without an intermediate ``await``."""

    def __init__(self, fetch_first: Callable[[], Awaitable[AsyncPage[T]]]) -> None:
        self._fetch_first = fetch_first

    def __await__(self) -> Generator[Any, None, AsyncPage[T]]:
        return self._fetch_first().__await__()

    async def __aiter__(self) -> AsyncIterator[T]:
        page = await self._fetch_first()
        async for item in page:
            yield item
