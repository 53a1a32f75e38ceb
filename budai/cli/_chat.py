"""``budai chat MODEL PROMPT``: one chat completion, streamed to the terminal as it arrives."""

from __future__ import annotations

import sys

import click

from budai.types import ChatCompletionMessageParam

from ._app import State, pass_state
from ._render import dump, to_data

__all__ = ["chat"]


@click.command()
@click.argument("model")
@click.argument("prompt")
@click.option("-s", "--system", help="System message sent before the prompt.")
@click.option("--max-tokens", type=click.IntRange(1))
@click.option("--temperature", type=click.FloatRange(0, 2))
@click.option("--no-stream", is_flag=True, help="Wait for the whole answer.")
@click.option(
    "-o",
    "--output",
    type=click.Choice(["text", "json", "yaml", "table"]),
    default=None,
    help="text (the default; `table` means the same) streams the answer; json/yaml print the "
    "completion object (no streaming). The global -o applies too.",
)
@pass_state
def chat(
    state: State,
    model: str,
    prompt: str,
    system: str | None,
    max_tokens: int | None,
    temperature: float | None,
    no_stream: bool,
    output: str | None,
) -> None:
    """Ask MODEL (a deployment or model name) PROMPT; `-` reads the prompt from stdin."""
    if output is None:
        output = state.output if state.output in ("json", "yaml") else "text"
    if output == "table":
        output = "text"
    state.output = "json" if output == "json" else ("yaml" if output == "yaml" else "table")
    if prompt == "-":
        prompt = sys.stdin.read()
    messages: list[ChatCompletionMessageParam] = []
    if system:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": prompt})
    completions = state.client.chat.completions
    if no_stream or output in ("json", "yaml"):
        completion = completions.create(
            model=model, messages=messages, max_tokens=max_tokens, temperature=temperature
        )
        if output in ("json", "yaml"):
            print(dump(to_data(completion), output))
        else:
            print(completion.choices[0].message.content or "" if completion.choices else "")
        return
    stream = completions.create(
        model=model,
        messages=messages,
        max_tokens=max_tokens,
        temperature=temperature,
        stream=True,
    )
    for chunk in stream:
        for choice in chunk.choices:
            if choice.index == 0 and choice.delta.content:
                sys.stdout.write(choice.delta.content)
                sys.stdout.flush()
    sys.stdout.write("\n")
