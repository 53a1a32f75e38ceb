"""Chat completion types (OpenAI-compatible): responses, stream chunks and request params."""

from typing import Any, Literal, NotRequired

from typing_extensions import TypedDict

from ._base import BudObject

__all__ = [
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatCompletionMessageParam",
    "Choice",
    "ChoiceDelta",
    "ChoiceDeltaToolCall",
    "ChunkChoice",
    "FunctionCall",
    "Message",
    "ToolCall",
    "Usage",
]

FinishReason = Literal["stop", "length", "tool_calls", "content_filter"]
Role = Literal["system", "user", "assistant", "tool"]


class FunctionCall(BudObject):
    """The function a tool call invokes; ``arguments`` is a JSON string."""

    name: str
    arguments: str


class ToolCall(BudObject):
    """A tool call the assistant asks for."""

    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class Message(BudObject):
    """A chat message in a completion."""

    role: Role
    content: str | None = None
    tool_calls: list[ToolCall] | None = None


class Choice(BudObject):
    """One completion choice."""

    index: int
    message: Message
    finish_reason: FinishReason


class Usage(BudObject):
    """Token counts of a completion."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BudObject):
    """``POST /chat/completions`` without streaming."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage


class FunctionCallDelta(BudObject):
    """Part of a streamed function call."""

    name: str | None = None
    arguments: str | None = None


class ChoiceDeltaToolCall(BudObject):
    """Part of a streamed tool call; ``index`` says which call it extends."""

    index: int
    id: str | None = None
    type: Literal["function"] | None = None
    function: FunctionCallDelta | None = None


class ChoiceDelta(BudObject):
    """What a stream chunk adds to a choice's message."""

    role: Role | None = None
    content: str | None = None
    tool_calls: list[ChoiceDeltaToolCall] | None = None


class ChunkChoice(BudObject):
    """One choice's delta in a stream chunk."""

    index: int
    delta: ChoiceDelta
    finish_reason: FinishReason | None = None


class ChatCompletionChunk(BudObject):
    """One ``data:`` event of a streamed chat completion."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None


class ChatCompletionMessageParam(TypedDict):
    """A message sent to ``chat.completions.create``."""

    role: Role
    content: str | None
    name: NotRequired[str]
    tool_calls: NotRequired[list[dict[str, Any]]]
    tool_call_id: NotRequired[str]
