-- BudConnection and ClusterBudConnection: a gateway URL and an API key, no remote object. The
-- operator checks the key (one whoami) and writes Ready, or Stalled with the check's reason
-- (Unauthorized, Unreachable, SecretNotFound); the project the key resolves to; and who uses the
-- connection (status.users, status.usedBy), whose finalizer holds its deletion until none do.
local CONNECTION = {
  deleting = function()
    local users = 0
    if obj.status ~= nil and type(obj.status.users) == "number" then
      users = obj.status.users
    end
    if users == 0 then
      return result("Progressing",
        "Deleting: no resource uses the connection; waiting for the Bud operator to release it")
    end
    local noun = " resources"
    if users == 1 then
      noun = " resource"
    end
    local message = "Deleting: still used by " .. tostring(users) .. noun
    local usedBy = obj.status.usedBy
    if type(usedBy) == "table" and #usedBy > 0 then
      message = message .. " (" .. table.concat(usedBy, ", ")
      if users > #usedBy then
        message = message .. " and " .. tostring(users - #usedBy) .. " more"
      end
      message = message .. ")"
    end
    return result("Progressing", message)
  end,
  -- The operator does not read bud.studio/paused on a connection (it writes nothing remote), so
  -- the annotation must not make it look Suspended.
  pausable = false,
  -- The reason is the part to act on (Unauthorized: fix the key; Unreachable: the URL).
  stalled = function(c)
    local message = text(c, "the connection does not work")
    if c.reason ~= nil and c.reason ~= "" then
      return c.reason .. ": " .. message
    end
    return message
  end,
}

local decided = kstatus(CONNECTION)
if decided ~= nil then
  return decided
end

local healthy = nil
if type(obj.status.project) == "string" and obj.status.project ~= "" then
  healthy = "Connected to project " .. obj.status.project
end
return readiness(healthy)
