"""`BudConnection` and `ClusterBudConnection`, the connection kinds: which gateway and API key
resources use. They have no remote object of their own; the connection loop
(`budai_operator.connection_loop`) writes their status, their decisions are
`reconcile.connection`.

`Connections` is what the operator knows of them: bodies from the watch, namespace labels for
selectors, and one `remote.GatewayLink` per connection (its own client, token bucket and caches,
so one team's traffic cannot starve another's).

Keys come from Secrets read with a single `get` (no list or watch); `refresh_keys` re-reads
them every few seconds, so a rotated Secret is used without a restart. Resolution itself is the
pure `reconcile.connection.resolve`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from ..kubeapi import KubeApi
from ..models import BUD_CONNECTION as BUD_CONNECTION_DEF
from ..models import CLUSTER_BUD_CONNECTION as CLUSTER_BUD_CONNECTION_DEF
from ..reconcile.connection import (
    BUD_CONNECTION,
    CLUSTER_BUD_CONNECTION,
    ConnKey,
    Resolution,
    describe,
    missing_secret,
    resolve,
    selects,
)
from ..remote import GatewayLink
from ..settings import OperatorSettings
from .base import ConnectionKindDef

log = logging.getLogger(__name__)

NAMESPACED_CONNECTION = ConnectionKindDef(BUD_CONNECTION_DEF)
CLUSTER_CONNECTION = ConnectionKindDef(CLUSTER_BUD_CONNECTION_DEF)

LEGACY: ConnKey = ("Operator", "", "flags")
"""The key given to the operator itself (flags or BUD_API_KEY_FILE): used as the cluster default
only while no ClusterBudConnection named default exists, so single-key installs keep working."""


def _fingerprint(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


class Connections:
    """Connection resources, their Secrets and their gateway clients."""

    def __init__(
        self,
        settings: OperatorSettings,
        kube: KubeApi,
        legacy: GatewayLink | None,
        operator_namespace: str,
    ) -> None:
        self.settings = settings
        self.kube = kube
        self.operator_namespace = operator_namespace
        self.namespaced: dict[tuple[str, str], dict[str, Any]] = {}
        self.cluster: dict[str, dict[str, Any]] = {}
        self.labels: dict[str, dict[str, str]] = {}
        self.gateways: dict[ConnKey, GatewayLink] = {}
        self.problems: dict[ConnKey, str] = {}
        """Why a connection has no usable gateway client (its Secret is missing, ...)."""
        self._fingerprints: dict[ConnKey, str] = {}
        self._closing: list[GatewayLink] = []
        self.legacy = legacy
        if legacy is not None:
            self.gateways[LEGACY] = legacy

    # --- watch --------------------------------------------------------------------------------

    def observe(self, kind: str, event_type: str | None, body: Mapping[str, Any]) -> ConnKey:
        """Record a connection body; returns its key."""
        meta = body.get("metadata") or {}
        name = str(meta.get("name"))
        if kind == CLUSTER_BUD_CONNECTION:
            key: ConnKey = (CLUSTER_BUD_CONNECTION, "", name)
            if event_type == "DELETED":
                self.cluster.pop(name, None)
            else:
                self.cluster[name] = dict(body)
        else:
            namespace = str(meta.get("namespace"))
            key = (BUD_CONNECTION, namespace, name)
            if event_type == "DELETED":
                self.namespaced.pop((namespace, name), None)
            else:
                self.namespaced[(namespace, name)] = dict(body)
        if event_type == "DELETED":
            self.forget(key)
        return key

    def observe_namespace(self, event_type: str | None, body: Mapping[str, Any]) -> bool:
        """Record a namespace's labels; True when they changed."""
        meta = body.get("metadata") or {}
        name = str(meta.get("name"))
        if event_type == "DELETED":
            return self.labels.pop(name, None) is not None
        labels = dict(meta.get("labels") or {})
        changed = self.labels.get(name) != labels
        self.labels[name] = labels
        return changed

    def forget(self, key: ConnKey) -> None:
        gw = self.gateways.pop(key, None)
        self._fingerprints.pop(key, None)
        self.problems.pop(key, None)
        if gw is not None and gw is not self.legacy:
            self._closing.append(gw)

    async def close_retired(self) -> None:
        while self._closing:
            await self._closing.pop().aclose()

    # --- resolution ---------------------------------------------------------------------------

    def resolve(self, namespace: str, ref: Mapping[str, Any] | None) -> Resolution:
        """The connection of a resource in `namespace` with `spec.connectionRef` = `ref`."""
        selectors = {
            name: (body.get("spec") or {}).get("namespaceSelector")
            for name, body in self.cluster.items()
        }
        found = resolve(
            namespace, ref, self.labels.get(namespace, {}), set(self.namespaced), selectors
        )
        if (
            found.key is None
            and not ref
            and self.legacy is not None
            and "default" not in self.cluster
        ):
            return Resolution(LEGACY)
        return found

    def allowed(self, namespace: str) -> set[ConnKey]:
        """Every connection a resource in `namespace` may use now."""
        out: set[ConnKey] = {
            (BUD_CONNECTION, ns, n) for ns, n in self.namespaced if ns == namespace
        }
        labels = self.labels.get(namespace, {})
        for name, body in self.cluster.items():
            if selects((body.get("spec") or {}).get("namespaceSelector"), labels):
                out.add((CLUSTER_BUD_CONNECTION, "", name))
        if self.legacy is not None:
            out.add(LEGACY)
        return out

    def body(self, key: ConnKey) -> dict[str, Any] | None:
        kind, namespace, name = key
        if kind == CLUSTER_BUD_CONNECTION:
            return self.cluster.get(name)
        if kind == BUD_CONNECTION:
            return self.namespaced.get((namespace, name))
        return None

    def gateway(self, key: ConnKey) -> GatewayLink | None:
        """The gateway client of a connection (None until its Secret has been read)."""
        return self.gateways.get(key)

    # --- keys ---------------------------------------------------------------------------------

    async def refresh_key(self, key: ConnKey) -> bool:
        """Read the connection's Secret and (re)build its client; True when the key or URL
        changed (so resources Stalled on Unauthorized should look again)."""
        if key == LEGACY:
            return self.legacy.reload_key() if self.legacy is not None else False
        body = self.body(key)
        if body is None:
            return False
        spec = body.get("spec") or {}
        ref = spec.get("secretRef") or {}
        namespace = self.operator_namespace if key[0] == CLUSTER_BUD_CONNECTION else key[1]
        try:
            if self._mounted(key, ref):
                value = self._read_mounted()
            else:
                value = await self.kube.secret_value(
                    namespace, str(ref.get("name")), str(ref.get("key") or "apiKey")
                )
        except Exception as err:
            self.problems[key] = f"cannot read Secret {namespace}/{ref.get('name')}: {err}"
            return False
        if value is None:
            self.problems[key] = missing_secret(namespace, ref.get("name"), ref.get("key"))
            return False
        self.problems.pop(key, None)
        url = str(spec.get("url") or "")
        mark = _fingerprint(url + "\n" + value)
        if self._fingerprints.get(key) == mark:
            return False
        self._fingerprints[key] = mark
        gw = self.gateways.get(key)
        if gw is not None and gw.settings.gateway_url == url:
            gw.set_key(value)
            log.info("connection %s: using the rotated API key", describe(key))
            return True
        if gw is not None:
            self._closing.append(gw)
        settings = replace(
            self.settings, gateway_url=url, api_key=SecretStr(value), api_key_file=None
        )
        self.gateways[key] = GatewayLink(settings, label=describe(key))
        return True

    def _mounted(self, key: ConnKey, ref: Mapping[str, Any]) -> bool:
        """The default connection the operator keeps names the Secret mounted into its pod: read
        the file, so the chart needs no Secret access at all."""
        s = self.settings
        return (
            key == (CLUSTER_BUD_CONNECTION, "", "default")
            and bool(s.default_connection_secret and s.api_key_file)
            and ref.get("name") == s.default_connection_secret
            and (ref.get("key") or "apiKey") == s.default_connection_secret_key
        )

    def _read_mounted(self) -> str | None:
        path = self.settings.api_key_file
        assert path is not None
        try:
            return Path(path).read_text(encoding="utf-8").strip() or None
        except OSError:
            return None

    def connection_keys(self) -> list[ConnKey]:
        """Every connection resource known."""
        out: list[ConnKey] = [(CLUSTER_BUD_CONNECTION, "", n) for n in self.cluster]
        out += [(BUD_CONNECTION, ns, n) for ns, n in self.namespaced]
        return out

    async def aclose(self) -> None:
        """Close every connection's pool (the operator's own gateway is its owner's to close)."""
        for gw in list(self.gateways.values()):
            if gw is not self.legacy:
                await gw.aclose()
        self.gateways.clear()
        await self.close_retired()
