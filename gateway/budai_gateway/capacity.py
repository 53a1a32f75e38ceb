"""Kubernetes-style quantities and the capacity arithmetic of clusters (pure functions)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_MEM = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|K|M|G|T)?$")
_MEM_FACTOR = {
    None: 1.0,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
    "K": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
}


def parse_cpu(q: str | float) -> float:
    if isinstance(q, (int, float)):
        return float(q)
    if q.endswith("m"):
        return int(q[:-1]) / 1000.0
    return float(q)


def format_cpu(cores: float) -> str:
    milli = round(cores * 1000)
    if milli % 1000 == 0:
        return str(milli // 1000)
    return f"{milli}m"


def parse_memory_gb(q: str | float) -> float:
    """Memory in GiB (what the contract calls ``memory_gb``)."""
    if isinstance(q, (int, float)):
        return float(q)
    m = _MEM.match(q)
    if m is None:
        raise ValueError(f"invalid memory quantity {q!r}")
    return float(m.group(1)) * _MEM_FACTOR[m.group(2)] / 2.0**30


@dataclass
class Node:
    name: str
    cpu: float
    memory_gb: float
    gpu: int
    gpu_type: str | None
    ready: bool = True
    used_cpu: float = 0.0
    used_mem: float = 0.0
    used_gpu: int = 0

    @classmethod
    def from_doc(cls, d: dict[str, Any]) -> Node:
        return cls(
            name=str(d["name"]),
            cpu=float(d["cpu"]),
            memory_gb=float(d["memory_gb"]),
            gpu=int(d.get("gpu", 0)),
            gpu_type=d.get("gpu_type"),
            ready=bool(d.get("ready", True)),
        )


@dataclass
class Request:
    cpu: float
    memory_gb: float
    gpu: int
    gpu_type: str | None

    @classmethod
    def from_resources(cls, r: dict[str, Any]) -> Request:
        return cls(
            cpu=parse_cpu(r.get("cpu", "1")),
            memory_gb=parse_memory_gb(r.get("memory", "2Gi")),
            gpu=int(r.get("gpu", 0)),
            gpu_type=r.get("gpu_type"),
        )


@dataclass
class Placement:
    nodes: list[Node]
    placed: dict[str, int] = field(default_factory=dict)

    def fits(self, req: Request, node: Node) -> bool:
        if not node.ready:
            return False
        if req.gpu and req.gpu_type and node.gpu_type != req.gpu_type:
            return False
        return (
            node.used_cpu + req.cpu <= node.cpu + 1e-9
            and node.used_mem + req.memory_gb <= node.memory_gb + 1e-9
            and node.used_gpu + req.gpu <= node.gpu
        )

    def place(self, owner: str, req: Request, replicas: int) -> int:
        """First-fit ``replicas`` copies of ``req``; returns how many found a node."""
        count = 0
        for _ in range(replicas):
            for node in self.nodes:
                if self.fits(req, node):
                    node.used_cpu += req.cpu
                    node.used_mem += req.memory_gb
                    node.used_gpu += req.gpu
                    count += 1
                    break
            else:
                break
        self.placed[owner] = self.placed.get(owner, 0) + count
        return count

    def free(self) -> tuple[float, float, int, list[str]]:
        ready = [n for n in self.nodes if n.ready]
        cpu = sum(n.cpu - n.used_cpu for n in ready)
        mem = sum(n.memory_gb - n.used_mem for n in ready)
        gpu = sum(n.gpu - n.used_gpu for n in ready)
        types = sorted({n.gpu_type for n in ready if n.gpu_type and n.gpu - n.used_gpu > 0})
        return cpu, mem, gpu, types

    def shortage(self, req: Request, replicas: int) -> str:
        """A sentence saying what is short for ``replicas`` more copies of ``req``."""
        cpu, mem, gpu, types = self.free()
        parts = []
        if req.cpu * replicas > cpu + 1e-9:
            parts.append(f"cpu: requested {format_cpu(req.cpu * replicas)}, free {format_cpu(cpu)}")
        if req.memory_gb * replicas > mem + 1e-9:
            parts.append(f"memory: requested {req.memory_gb * replicas:g}Gi, free {mem:g}Gi")
        if req.gpu * replicas > gpu:
            parts.append(f"gpu: requested {req.gpu * replicas}, free {gpu}")
        if req.gpu and req.gpu_type and req.gpu_type not in types:
            parts.append(f"gpu_type: no ready node has a free {req.gpu_type}")
        if not any(n.ready for n in self.nodes):
            parts.append("no ready nodes")
        if not parts:
            parts.append("no single node has room for one replica")
        return "insufficient resources: " + "; ".join(parts)
