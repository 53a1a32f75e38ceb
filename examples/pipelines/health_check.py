"""Check that a URL answers, with retries, and branch on its status code.

    budai pipelines create -f examples/pipelines/health_check.py
    budai executions run health-check --param url=https://status.example.com/health --wait

`budai pipelines create -f` runs this file and takes the module-level variable `pipeline`.
The gateway connects only where its `egress:` config allows: not to loopback, link-local
addresses or itself by default (gateway/budai_gateway/README.md, "Egress"). To probe a server on
this machine with the local gateway, start it with `egress: {allow_loopback: true}` in its config.
"""

from budai.dsl import Pipeline, Retry

with Pipeline(
    "health-check",
    description="GET a URL (retried), then report whether it is up",
    retry=Retry(max_attempts=1),
) as pipeline:
    probe = pipeline.http_request(
        "probe",
        url=pipeline.param("url"),
        expected_status=[200, 503],
        timeout_seconds=5,
        retry=Retry(max_attempts=3, backoff_multiplier=2, initial_delay_seconds=0.5),
    )
    status = probe.output["status_code"]
    up = pipeline.set_output("up", {"url": pipeline.param("url"), "status": status})
    up.when(status == 200)
    down = pipeline.fail("down", message=f"{pipeline.param('url')} answered {status}")
    down.when(status != 200)
    probe >> [up, down]
