"""`BudDeployment`: a model served on a Bud cluster, with replicas or autoscaling."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from ._base import (
    AGE_COLUMN,
    CONNECTION_REF_IMMUTABLE,
    EXTERNAL_ID_IMMUTABLE,
    ID_COLUMN,
    NAME_IMMUTABLE,
    READY_COLUMN,
    REASON_COLUMN,
    STATE_COLUMN,
    CommonStatus,
    CRDInfo,
    CRModel,
    KindDef,
    ManagedSpec,
    ObjectRef,
    PrinterColumn,
    StatusModel,
)


class AutoScaling(CRModel):
    """Autoscaling settings; when enabled the gateway owns the replica count."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.minReplicas <= self.maxReplicas",
                    "message": "autoScaling.minReplicas must be less than or equal to maxReplicas",
                }
            ]
        }
    )

    enabled: bool = False
    """Let the gateway's autoscaler move replicas between minReplicas and maxReplicas."""

    min_replicas: int = Field(default=1, ge=0, le=1000)
    """Lowest replica count the autoscaler may choose."""

    max_replicas: int = Field(default=1, ge=1, le=1000)
    """Highest replica count the autoscaler may choose."""

    target_cpu: int | None = Field(default=None, ge=1, le=100, alias="targetCPU")
    """Target CPU utilisation in percent (1..100)."""

    target_memory: int | None = Field(default=None, ge=1, le=100)
    """Target memory utilisation in percent (1..100)."""


class Resources(CRModel):
    """Resources each replica reserves on the cluster."""

    cpu: int | str | None = Field(default=None, json_schema_extra={"x-quantity": True})
    """CPU per replica as a Kubernetes quantity (2, 500m)."""

    memory: int | str | None = Field(default=None, json_schema_extra={"x-quantity": True})
    """Memory per replica as a Kubernetes quantity (16Gi)."""

    gpu: int | None = Field(default=None, ge=0, le=64)
    """GPUs per replica."""

    gpu_type: str | None = Field(default=None, min_length=1, max_length=63)
    """GPU model required (for example A100)."""


class BudDeploymentSpec(ManagedSpec):
    """Desired state of a deployment of a model on a Bud cluster."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.modelRef) != has(self.modelId)",
                    "message": "exactly one of modelRef and modelId must be set",
                },
                {
                    "rule": "has(self.clusterId) != has(self.clusterName)",
                    "message": "exactly one of clusterId and clusterName must be set",
                },
                EXTERNAL_ID_IMMUTABLE,
                CONNECTION_REF_IMMUTABLE,
                NAME_IMMUTABLE,
            ]
        }
    )

    model_ref: ObjectRef | None = None
    """The BudModel to deploy, in the same namespace (exclusive with modelId)."""

    model_id: str | None = Field(default=None, min_length=1, max_length=128)
    """Remote id of the model to deploy (exclusive with modelRef)."""

    cluster_id: str | None = Field(default=None, min_length=1, max_length=128)
    """Remote id of the cluster to deploy on (exclusive with clusterName)."""

    cluster_name: str | None = Field(default=None, min_length=1, max_length=253)
    """Name of the cluster to deploy on, resolved to its id by the operator (exclusive with
    clusterId)."""

    replicas: int = Field(default=1, ge=0, le=1000)
    """Desired replicas; ignored while autoScaling.enabled (the gateway owns the count)."""

    auto_scaling: AutoScaling | None = None
    """Autoscaling settings."""

    resources: Resources | None = None
    """Resources per replica."""

    stopped: bool = False
    """Stop the deployment (keep it, serve nothing) while true."""


class ClusterResources(StatusModel):
    """Free capacity the cluster reports."""

    cpu: str | None = None
    """Free CPU as a quantity."""

    memory_gb: float | None = None
    """Free memory in GB."""

    gpu_count: int | None = None
    """Free GPUs."""

    gpu_types: list[str] | None = Field(default=None, max_length=64)
    """GPU models available."""


class ClusterStatus(StatusModel):
    """The cluster the deployment runs on, as last observed."""

    id: str | None = None
    """Cluster id."""

    name: str | None = None
    """Cluster name."""

    state: str | None = None
    """Cluster state (provisioning, active, degraded, maintenance, failed)."""

    health: str | None = None
    """Cluster health (healthy, degraded, unhealthy)."""

    node_count: int | None = None
    """Ready nodes."""

    available_resources: ClusterResources | None = None
    """Free capacity."""

    last_check_time: str | None = None
    """When the health was last read (RFC 3339)."""


class ScalingDecisionStatus(StatusModel):
    """One decision of the gateway's autoscaler."""

    time: str | None = None
    """When it decided (RFC 3339)."""

    from_replicas: int | None = None
    """Replicas before."""

    to_replicas: int | None = None
    """Replicas after."""

    metric: str | None = None
    """What was measured (requests_per_second)."""

    observed: float | None = None
    """The measured value."""

    target: float | None = None
    """The target per replica it was held against."""

    reason: str | None = None
    """The autoscaler's own sentence."""


class AutoScalingStatus(StatusModel):
    """Autoscaling as the gateway runs it."""

    enabled: bool | None = None
    """Whether autoscaling is on."""

    min_replicas: int | None = None
    """Lowest replica count."""

    max_replicas: int | None = None
    """Highest replica count."""

    target_cpu: int | None = Field(default=None, alias="targetCPU")
    """Target CPU utilisation in percent."""

    target_memory: int | None = None
    """Target memory utilisation in percent."""

    last_decisions: list[ScalingDecisionStatus] | None = Field(default=None, max_length=5)
    """The autoscaler's last five decisions, oldest first (each is also an Event, reason
    Scaled)."""


class BudDeploymentStatus(CommonStatus):
    """Observed state of the remote deployment and its cluster."""

    state: str | None = None
    """Deployment state reported by the gateway."""

    replicas: int | None = Field(default=None, ge=0)
    """Ready replicas (the /scale status path)."""

    desired_replicas: int | None = Field(default=None, ge=0)
    """Replica count the gateway is driving toward."""

    endpoint_url: str | None = None
    """URL serving the deployment."""

    model_id: str | None = None
    """Remote id of the deployed model."""

    auto_scaling: AutoScalingStatus | None = None
    """Autoscaling as the gateway runs it."""

    cluster: ClusterStatus | None = None
    """The cluster and its health."""

    error: str | None = None
    """Error reported by the gateway (for example missing capacity)."""


BUD_DEPLOYMENT = KindDef(
    spec=BudDeploymentSpec,
    status=BudDeploymentStatus,
    crd=CRDInfo(
        kind="BudDeployment",
        plural="buddeployments",
        short_names=("bd",),
        description="A model deployed on a Bud cluster, scaled by replicas or autoscaling.",
        printer_columns=(
            READY_COLUMN,
            STATE_COLUMN,
            PrinterColumn("Replicas", ".status.replicas", "integer", "Ready replicas"),
            PrinterColumn("Desired", ".status.desiredReplicas", "integer", "Desired replicas"),
            PrinterColumn("Cluster", ".status.cluster.health", description="Cluster health"),
            REASON_COLUMN,
            PrinterColumn("Endpoint", ".status.endpointUrl", priority=1),
            ID_COLUMN,
            AGE_COLUMN,
        ),
        scale=True,
    ),
)
