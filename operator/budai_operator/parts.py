"""What the runtime's parts (reconciler, background refreshes, connection loop) share: built
once by `budai_operator.runtime.Runtime`, handed to each."""

from __future__ import annotations

from dataclasses import dataclass

from .kinds.base import KindRegistry
from .kinds.connection import Connections
from .kubeapi import KubeApi
from .objects import Objects
from .scheduler import Scheduler
from .settings import OperatorSettings
from .writes import Writes


@dataclass(frozen=True)
class Parts:
    settings: OperatorSettings
    kinds: KindRegistry
    kube: KubeApi
    objects: Objects
    conns: Connections
    scheduler: Scheduler[str]
    writes: Writes


class Part:
    """Base of each runtime part: the shared pieces as attributes."""

    def __init__(self, parts: Parts) -> None:
        self.settings = parts.settings
        self.kinds = parts.kinds
        self.kube = parts.kube
        self.objects = parts.objects
        self.conns = parts.conns
        self.scheduler = parts.scheduler
        self.writes = parts.writes
