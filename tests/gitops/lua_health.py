"""A fast stand-in for Argo CD's Lua engine, for unit tests; the real one is judged beside it.

Argo CD (``util/lua/lua.go``, v3.6.1) runs an ``argocd-cm`` health check in gopher-lua (Lua 5.1)
with ``SkipOpenLibs`` and then opens only ``package``, ``base`` and ``table`` plus its "safe os"
(``time``/``date``, registered through ``RegisterModule(lua.TabLibName, ...)``, so they land in
``table`` and ``os`` stays nil unless a script ``require``s it). ``string`` and ``math`` are not
opened, and without the string library strings have no metatable, so ``("x"):format()`` fails too.
``lupa.lua51`` is a real Lua 5.1; the script runs under ``setfenv`` with exactly that set, and the
string metatable is removed. ``tests/gitops/test_engines.py`` shows that this agrees with the real
engine (``tests/fixtures/engines.py``) on every recorded fixture and sandbox probe.
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
  local safe_os = {time = os.time, date = os.date}
  local tbl = {}
  for k, v in pairs(table) do tbl[k] = v end
  tbl.time, tbl.date = safe_os.time, safe_os.date
  local loaded = {os = safe_os, table = tbl}
  local env
  env = {
    obj = obj, assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs,
    pcall = pcall, xpcall = xpcall, select = select, tonumber = tonumber, tostring = tostring,
    type = type, unpack = unpack, rawget = rawget, rawset = rawset, rawequal = rawequal,
    setmetatable = setmetatable, getmetatable = getmetatable, print = function() end,
    _VERSION = _VERSION, table = tbl,
    require = function(mod)
      local m = loaded[mod]
      if m == nil then error("module " .. tostring(mod) .. " not found") end
      return m
    end,
  }
  env._G = env
  setfenv(chunk, env)
  debug.setmetatable("", nil)
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
