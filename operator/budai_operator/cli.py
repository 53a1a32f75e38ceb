"""`budai-operator run`: kopf with the Bud operator's settings.

    budai-operator run [--namespace NS ...] [--gateway-url URL] [--api-key-file PATH] ...

The gateway URL comes from `--gateway-url`, `BUD_GATEWAY_URL` or `BUD_BASE_URL`; the API key from
`--api-key-file` / `BUD_API_KEY_FILE` (a mounted Secret) or `BUD_API_KEY`. The key is never
printed, logged or passed on the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from pydantic import SecretStr

from .settings import DEFAULT_GATEWAY_URL, OperatorSettings, SettingsError, read_api_key


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


def build_parser() -> argparse.ArgumentParser:
    """The command line (every flag also has an environment variable)."""
    env = os.environ
    parser = argparse.ArgumentParser(prog="budai-operator", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the operator")
    run.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=None,
        help="namespace (or kopf glob) to watch; repeat for several; default: all (BUD_NAMESPACES)",
    )
    run.add_argument(
        "--gateway-url",
        default=env.get("BUD_GATEWAY_URL") or env.get("BUD_BASE_URL") or DEFAULT_GATEWAY_URL,
    )
    run.add_argument(
        "--api-key-file",
        default=env.get("BUD_API_KEY_FILE"),
        help="file holding the API key (a mounted Secret); else BUD_API_KEY",
    )
    run.add_argument(
        "--log-format", choices=("json", "plain", "full"), default=env.get("BUD_LOG_FORMAT", "json")
    )
    run.add_argument("--verbose", action="store_true")
    run.add_argument(
        "--in-flight-interval", type=float, default=_env_float("BUD_IN_FLIGHT_INTERVAL", 10.0)
    )
    run.add_argument(
        "--stable-interval", type=float, default=_env_float("BUD_STABLE_INTERVAL", 300.0)
    )
    run.add_argument(
        "--refresh-interval",
        type=float,
        default=_env_float("BUD_REFRESH_INTERVAL", 30.0),
        help="period of the list-based refresh of each kind",
    )
    run.add_argument(
        "--cluster-interval", type=float, default=_env_float("BUD_CLUSTER_INTERVAL", 15.0)
    )
    run.add_argument(
        "--rate-limit",
        type=float,
        default=_env_float("BUD_RATE_LIMIT", 10.0),
        help="gateway requests per second (token bucket)",
    )
    run.add_argument("--burst", type=int, default=int(env.get("BUD_RATE_BURST", "100")))
    run.add_argument(
        "--workers",
        type=int,
        default=int(env.get("BUD_WORKERS", "64")),
        help="reconciles that may run at once (each object at most once)",
    )
    run.add_argument(
        "--metrics-port",
        type=int,
        default=int(env.get("BUD_METRICS_PORT", "8080")),
        help="Prometheus metrics port (0 disables)",
    )
    run.add_argument(
        "--health-port",
        type=int,
        default=int(env.get("BUD_HEALTH_PORT", "8081")),
        help="liveness/readiness port serving /healthz (0 disables)",
    )
    run.add_argument("--bind-address", default=env.get("BUD_BIND_ADDRESS", "0.0.0.0"))
    run.add_argument(
        "--peering",
        default=env.get("BUD_PEERING", "bud-operator"),
        help="kopf peering name: one active instance among replicas",
    )
    run.add_argument(
        "--standalone",
        action="store_true",
        default=env.get("BUD_STANDALONE", "") == "true",
        help="no peering (a single replica)",
    )
    run.add_argument("--priority", type=int, default=int(env.get("BUD_PRIORITY", "0")))
    run.add_argument(
        "--operator-namespace",
        default=env.get("BUD_OPERATOR_NAMESPACE") or env.get("POD_NAMESPACE") or "default",
        help="namespace holding the Secrets of ClusterBudConnections",
    )
    run.add_argument(
        "--default-connection-secret",
        default=env.get("BUD_DEFAULT_CONNECTION_SECRET") or None,
        help="keep a ClusterBudConnection default for --gateway-url and this Secret (in the "
        "operator's namespace)",
    )
    run.add_argument(
        "--default-connection-secret-key",
        default=env.get("BUD_DEFAULT_CONNECTION_SECRET_KEY", "api-key"),
    )
    run.add_argument(
        "--default-connection-selector",
        default=env.get("BUD_DEFAULT_CONNECTION_SELECTOR", "{}"),
        help="JSON namespaceSelector of that connection ({} selects every namespace)",
    )
    run.add_argument(
        "--connections-only",
        action="store_true",
        default=env.get("BUD_CONNECTIONS_ONLY", "") == "true",
        help="no API key of its own: resources use BudConnection / ClusterBudConnection only",
    )
    return parser


def settings_from(args: argparse.Namespace) -> OperatorSettings:
    """Typed settings from parsed arguments (the key is read here, from file or environment)."""
    namespaces = args.namespace
    if namespaces is None:
        namespaces = [n for n in os.environ.get("BUD_NAMESPACES", "").split(",") if n.strip()]
    key: SecretStr = read_api_key(args.api_key_file)
    return OperatorSettings(
        gateway_url=args.gateway_url,
        api_key=key,
        api_key_file=args.api_key_file or os.environ.get("BUD_API_KEY_FILE") or None,
        namespaces=tuple(n.strip() for n in namespaces),
        log_format=args.log_format,
        verbose=args.verbose,
        in_flight_interval=args.in_flight_interval,
        stable_interval=args.stable_interval,
        refresh_interval=args.refresh_interval,
        cluster_interval=args.cluster_interval,
        rate_limit=args.rate_limit,
        burst=args.burst,
        workers=args.workers,
        metrics_port=args.metrics_port,
        health_port=args.health_port,
        peering=None if args.standalone else args.peering,
        priority=args.priority,
        operator_namespace=args.operator_namespace,
        connections_only=args.connections_only,
        default_connection_secret=args.default_connection_secret,
        default_connection_secret_key=args.default_connection_secret_key,
        default_connection_selector=args.default_connection_selector,
    )


def run(settings: OperatorSettings, bind_address: str = "0.0.0.0") -> None:
    """Run kopf with our handlers until interrupted."""
    import kopf
    from prometheus_client import start_http_server

    from . import handlers  # noqa: F401  (registers the handlers)

    log_format = {
        "json": kopf.LogFormat.JSON,
        "plain": kopf.LogFormat.PLAIN,
        "full": kopf.LogFormat.FULL,
    }[settings.log_format]
    kopf.configure(verbose=settings.verbose, log_format=log_format)
    # httpx logs each request URL at INFO; the operator's own metrics already count them.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if not settings.verbose:
        # kopf logs every handler call per object at INFO ("Handler ... succeeded"): with
        # thousands of objects that is most of the operator's CPU. Our own log lines and kopf's
        # warnings stay.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=bind_address)
    liveness = (
        f"http://{bind_address}:{settings.health_port}/healthz" if settings.health_port else None
    )
    memo = kopf.Memo(settings=settings, namespaces=settings.namespaces)
    asyncio.run(
        kopf.operator(
            clusterwide=not settings.namespaces,
            namespaces=settings.namespaces,
            standalone=settings.peering is None,
            peering_name=settings.peering,
            priority=settings.priority,
            liveness_endpoint=liveness,
            memo=memo,
        )
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `budai-operator`."""
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from(args)
    except SettingsError as err:
        print(f"budai-operator: {err}", file=sys.stderr)
        return 2
    try:
        run(settings, args.bind_address)
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
