"""What a kind is to the operator: `KindAdapter` (a managed kind: one remote object per custom
resource), `ConnectionKindDef` (a connection kind: read by the connection loop), `Ref` (which
other kind a spec waits on), `Turn` (what one reconcile offers an adapter) and `KindRegistry`.

The runtime asks the adapter of an object's kind for everything that differs between kinds, so
no module outside `budai_operator.kinds` compares a kind with a concrete name.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic.alias_generators import to_camel

from ..models import CRModel, KindDef
from ..reconcile import conditions as cnd
from ..reconcile.common import Action, Ctx, Observation, Plan, delete_plan
from ..reconcile.errors import Failure
from ..reconcile.polling import ANN_RECONCILE_REQUESTED_AT
from ..remote import GatewayLink, RemoteCache

if TYPE_CHECKING:
    from budai import AsyncBudClient

    from ..objects import Objects, ObjectState
    from ..settings import OperatorSettings


@dataclass(frozen=True)
class Ref:
    """A spec field naming another custom resource (`modelRef`) or its remote id directly
    (`modelId`)."""

    kind: str
    """The kind referred to."""
    ref_attr: str
    """The spec attribute holding an `ObjectRef` (snake_case: `model_ref`)."""
    id_attr: str
    """The spec attribute holding a remote id instead (`model_id`)."""
    needs_ready: bool = False
    """The target must be Ready, not only have a remote id."""

    @property
    def field(self) -> str:
        """The camelCase spec field of the reference, as stored."""
        return to_camel(self.ref_attr)

    @property
    def id_field(self) -> str:
        return to_camel(self.id_attr)


@dataclass
class Turn:
    """One reconcile (or deletion) of one object, as its kind's adapter sees it."""

    st: ObjectState
    ctx: Ctx
    objects: Objects
    settings: OperatorSettings

    @property
    def gw(self) -> GatewayLink:
        return self.st.gw

    def max_age(self) -> float:
        """How stale a cached remote object may be for this reconcile."""
        ctx = self.ctx
        requested = ctx.annotations.get(ANN_RECONCILE_REQUESTED_AT)
        if ctx.spec_changed or (
            requested and requested != ctx.status.get("lastHandledReconcileAt")
        ):
            return 0.0
        if cnd.is_true(ctx.status.get("conditions"), cnd.RECONCILING):
            return self.settings.in_flight_interval / 2
        return self.settings.refresh_interval * 2

    def resolve_ref(self, ref: Ref, spec: Any) -> tuple[str | None, str | None]:
        """The remote id `spec` refers to, or why there is none yet (what it waits for)."""
        direct = getattr(spec, ref.id_attr, None)
        if direct:
            return str(direct), None
        target_ref = getattr(spec, ref.ref_attr, None)
        if target_ref is None:
            return None, "no reference set"
        name = target_ref.name
        target = self.objects.find(ref.kind, self.st.namespace, name)
        if target is None:
            return None, f"{ref.kind} {name} not found in namespace {self.st.namespace}"
        remote_id = target.status.get("id")
        if not remote_id:
            return None, f"{ref.kind} {name} has no remote id yet"
        if ref.needs_ready and target.ready != "True":
            return None, f"{ref.kind} {name} is not Ready yet"
        return str(remote_id), None


@dataclass(frozen=True)
class Deletion:
    """Where a deletion stands: the remote id and the failure streak so far."""

    remote_id: str | None
    attempt: int
    last_failure: Failure | None

    def plan(self, ctx: Ctx, spec: Any, obs: Observation, noun: str) -> Plan:
        """The shared deletion decision (deletionPolicy Delete or Orphan)."""
        return delete_plan(
            ctx,
            policy=str(spec.deletion_policy.value),
            remote_id=self.remote_id,
            observation=obs,
            attempt=self.attempt,
            last_failure=self.last_failure,
            noun=noun,
        )


class _Named:
    definition: KindDef
    """The kind's spec and status models and CRD metadata (`budai_operator.models`)."""

    @property
    def kind(self) -> str:
        return self.definition.crd.kind

    @property
    def plural(self) -> str:
        return self.definition.crd.plural


class KindAdapter(_Named):
    """A managed kind: its models and plural, its gateway resource, and its decisions.

    Subclasses set the class attributes and implement `decide`; the other methods have the
    behaviour most kinds share (create/update/delete through the client's `api` resource).
    """

    noun: ClassVar[str]
    """How messages name the remote object ("model")."""
    api: ClassVar[str]
    """The AsyncBudClient attribute of the gateway resource ("models")."""
    listed: ClassVar[bool] = True
    """Refreshed by one list per connection; False: read by id only."""
    ref: ClassVar[Ref | None] = None
    """The kind this one waits on, if any."""

    @property
    def spec_model(self) -> type[CRModel]:
        return self.definition.spec

    def cache(self, gw: GatewayLink) -> RemoteCache:
        """This kind's remote objects as `gw` last saw them."""
        return gw.cache(self.api, self.listed)

    async def decide(self, turn: Turn, spec: Any, obs: Observation) -> Plan:
        """Gather what the pure decision needs (references, related remote state) and call it."""
        raise NotImplementedError

    def send(self, client: AsyncBudClient, action: Action) -> tuple[str, Awaitable[Any]]:
        """One remote write of a reconcile: what it does (for messages) and the call. A create
        returns the SDK's raw response (its headers say whether it was replayed)."""
        resource = getattr(client, self.api)
        target = action.target_id or ""
        key = action.idempotency_key
        doing = f"{action.op} {self.noun}" + (f" {target}" if target else "")
        if action.op == "create":
            return doing, resource.with_response.create(idempotency_key=key, **action.body)
        return doing, resource.update(target, idempotency_key=key, **action.body)

    def send_delete(self, client: AsyncBudClient, action: Action) -> tuple[str, Awaitable[Any]]:
        """One remote write of a deletion."""
        target = action.target_id or ""
        doing = f"{action.op} {self.noun} {target}"
        return doing, getattr(client, self.api).delete(
            target, idempotency_key=action.idempotency_key
        )

    def delete_plan(self, ctx: Ctx, spec: Any, obs: Observation, deletion: Deletion) -> Plan:
        """The deletion decision (deletionPolicy Delete or Orphan)."""
        return deletion.plan(ctx, spec, obs, self.noun)

    async def unrecorded_id(self, turn: Turn, spec: Any) -> str | None:
        """On deletion with no id known: the id of a remote object this resource created but
        never recorded (None: the kind cannot leak one, or there is none)."""
        return None

    def direct_ref(self, spec: Any, obs: Observation) -> str | None:
        """A remote id the spec names directly that must be checked for ownership (an id alone
        must not reach another namespace's object)."""
        if self.ref is None:
            return None
        direct = getattr(spec, self.ref.id_attr, None)
        return str(direct) if direct else None

    def cluster_of(self, st: ObjectState) -> str | None:
        """The cluster whose health this object follows (the cluster loop wakes it on a
        change); None for kinds without one."""
        return None


class ConnectionKindDef(_Named):
    """A connection kind: no remote object of its own; the connection loop reads and writes
    it (`budai_operator.connection_loop`, decisions in `reconcile.connection`)."""

    def __init__(self, definition: KindDef) -> None:
        self.definition = definition


class KindRegistry:
    """Kind name -> adapter, for the managed kinds and the connection kinds."""

    def __init__(
        self, managed: tuple[KindAdapter, ...], connections: tuple[ConnectionKindDef, ...] = ()
    ) -> None:
        self.managed: Mapping[str, KindAdapter] = {a.kind: a for a in managed}
        self.connections: Mapping[str, ConnectionKindDef] = {c.kind: c for c in connections}
        if len(self.managed) != len(managed) or set(self.managed) & set(self.connections):
            raise ValueError("a kind is registered twice")

    def with_kind(self, adapter: KindAdapter) -> KindRegistry:
        """This registry plus one managed kind."""
        return KindRegistry((*self.managed.values(), adapter), tuple(self.connections.values()))

    def __getitem__(self, kind: str) -> KindAdapter:
        return self.managed[kind]

    def __iter__(self) -> Iterator[KindAdapter]:
        return iter(self.managed.values())

    def plural(self, kind: str) -> str:
        """The plural of any registered kind, managed or connection."""
        entry = self.managed.get(kind) or self.connections[kind]
        return entry.plural

    def definitions(self) -> tuple[KindDef, ...]:
        """Every kind's models and CRD metadata (what crdgen renders)."""
        return (
            *(a.definition for a in self.managed.values()),
            *(c.definition for c in self.connections.values()),
        )
