"""Register a model, deploy it, smoke-test it with a chat completion, then scale it.

    budai pipelines create -f examples/pipelines/deploy_model.py
    budai executions run deploy-model --param model=demo-model \
        --param cluster_id=<a cluster id from `budai clusters list`> --param replicas=2 --wait

Every step reads the previous ones through `step.output[...]`, which also orders them. The
final scale only runs when the smoke test produced an answer and `replicas` is above 1.
"""

from budai.dsl import Pipeline, Retry

with Pipeline(
    "deploy-model",
    description="model -> deployment -> smoke test -> scale",
    retry=Retry(max_attempts=2, initial_delay_seconds=1),
) as pipeline:
    health = pipeline.cluster_health("cluster-health", cluster_id=pipeline.param("cluster_id"))
    model = pipeline.model_add(
        "add-model",
        name=pipeline.param("model"),
        source="hugging_face",
        uri=pipeline.param("uri", "org/demo-model"),
        wait_timeout_seconds=600,
    )
    # Fail fast on an unhealthy cluster: the guard is skipped (and so passes) when it is healthy.
    guard = pipeline.fail(
        "cluster-unhealthy",
        message=f"cluster {pipeline.param('cluster_id')} is {health.output['status']}",
        condition=~health.output["healthy"],
    )
    deployment = pipeline.deployment_create(
        "deploy",
        model_id=model.output["id"],
        cluster_id=pipeline.param("cluster_id"),
        name=f"{pipeline.param('model')}-dep",
        resources={"cpu": "1", "memory": "1Gi"},
    )
    guard >> deployment
    smoke = pipeline.chat_completion(
        "smoke-test",
        model=deployment.output["name"],
        prompt="Say hello.",
        max_tokens=16,
    )
    scale = pipeline.deployment_scale(
        "scale",
        deployment_id=deployment.output["id"],
        replicas=pipeline.param("replicas", 1),
        condition=(smoke.output["content"] != "") & (pipeline.param("replicas", 1) > 1),
    )
    smoke >> scale
    pipeline.set_output(
        "summary",
        {
            "model_id": model.output["id"],
            "deployment_id": deployment.output["id"],
            "answer": smoke.output["content"],
        },
    ).after(scale)
