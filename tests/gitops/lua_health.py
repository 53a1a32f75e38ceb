"""Run an Argo CD ``health.lua`` the way Argo CD does, for the tests in this folder.

Argo CD evaluates health scripts with gopher-lua (Lua 5.1) and only the safe standard libraries
(no ``os``, ``io``, ``require``), with the live object in the global ``obj``. ``lupa.lua51`` is a
real Lua 5.1, and the script runs under ``setfenv`` with an environment that holds exactly those
safe libraries, so a script that touches anything else fails here as it would in Argo CD.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lupa.lua51 as lua51

HEALTH_DIR = Path(__file__).resolve().parents[2] / "gitops" / "argocd" / "health"

_RUNNER = """
function(source, name, obj)
  local chunk, err = loadstring(source, name)
  if chunk == nil then
    error(err)
  end
  local env = {
    obj = obj, assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs,
    pcall = pcall, select = select, tonumber = tonumber, tostring = tostring, type = type,
    unpack = unpack, string = string, table = table, math = math,
  }
  setfenv(chunk, env)
  local hs = chunk()
  return hs.status, hs.message
end
"""


def evaluate(script: Path, obj: dict[str, Any]) -> tuple[str, str]:
    """Return ``(status, message)`` that the health script computes for ``obj``."""
    runtime = lua51.LuaRuntime(unpack_returned_tuples=True)
    run = runtime.eval(_RUNNER)
    table = runtime.table_from(obj, recursive=True)
    status, message = run(script.read_text(), f"@{script.name}", table)
    return status, message
