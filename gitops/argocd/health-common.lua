-- The Bud operator writes kstatus conditions (Ready, Reconciling, Stalled) plus Synced, each with
-- observedGeneration; this maps them onto Healthy / Progressing / Degraded / Suspended.
-- Argo CD runs argocd-cm health checks in gopher-lua (Lua 5.1) with only the base, table and
-- package libraries (util/lua/lua.go; `string`, `math` and `os` are nil unless
-- resource.customizations.useOpenLibs.<group_kind> is true), within one second. So these scripts
-- use base functions and `..` only: no string.format, no ("x"):method(), no math.*.
local hs = {}

local function condition(name)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == name then
      return c
    end
  end
  return nil
end

local function isTrue(c)
  return c ~= nil and c.status == "True"
end

local function isFalse(c)
  return c ~= nil and c.status == "False"
end

local function text(c, default)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return default
end

local function result(status, message)
  hs.status = status
  hs.message = message
  return hs
end

local generation = obj.metadata.generation or 0
local annotations = obj.metadata.annotations or {}
local spec = obj.spec or {}

-- The kstatus rules every kind shares, in order; nil when none of them decides. `kind` holds
-- what differs between kinds: deleting() is the verdict while metadata.deletionTimestamp is set,
-- pausable whether the operator honours the bud.studio/paused annotation for it, stalled(c) the
-- Degraded message for a Stalled=True condition c.
local function kstatus(kind)
  if obj.metadata.deletionTimestamp ~= nil then
    return kind.deleting()
  end

  -- Not seen by the operator yet (or the operator is down): never report Healthy on old news.
  if obj.status == nil or obj.status.observedGeneration == nil then
    return result("Progressing", "Waiting for the Bud operator to observe this resource")
  end

  -- Paused: the operator stops every remote write and says so with Synced=False, reason Paused.
  if kind.pausable then
    local synced = condition("Synced")
    if isFalse(synced) and synced.reason == "Paused" then
      return result("Suspended", text(synced, "Paused by the bud.studio/paused annotation"))
    end
    if annotations["bud.studio/paused"] == "true" then
      return result("Suspended", "Paused by the bud.studio/paused annotation")
    end
  end

  if obj.status.observedGeneration < generation then
    return result("Progressing", "Waiting for the Bud operator to observe generation "
      .. tostring(generation) .. " (observed " .. tostring(obj.status.observedGeneration) .. ")")
  end

  -- Stalled (kstatus): a human must act (invalid spec, unauthorized, remote object gone).
  local stalled = condition("Stalled")
  if isTrue(stalled) then
    return result("Degraded", kind.stalled(stalled))
  end
  return nil
end

-- The last rules of every kind: work in flight, then Ready. `healthy` is the Healthy message
-- (nil: the Ready condition's own).
local function readiness(healthy)
  -- Work in flight (creating, downloading, scaling) wins over Ready, as kstatus' Reconciling does.
  local reconciling = condition("Reconciling")
  if isTrue(reconciling) then
    return result("Progressing", text(reconciling, "Reconciling"))
  end

  local ready = condition("Ready")
  if isTrue(ready) then
    if ready.observedGeneration ~= nil and ready.observedGeneration < generation then
      return result("Progressing", "Ready was computed for an older generation")
    end
    return result("Healthy", healthy or text(ready, "Ready"))
  end
  return result("Progressing", text(ready, "Waiting for the Ready condition"))
end

-- The kinds with a remote object (models, deployments, pipelines, executions).
local MANAGED = {
  -- Deleting: the finalizer waits for the remote object to go; DeleteFailed says why it cannot.
  deleting = function()
    local deleteFailed = condition("DeleteFailed")
    if isTrue(deleteFailed) then
      return result("Degraded", text(deleteFailed, "Deleting the remote object keeps failing"))
    end
    return result("Progressing", "Deleting the remote object")
  end,
  pausable = true,
  stalled = function(c)
    return text(c, "The Bud operator cannot make progress")
  end,
}
