local decided = kstatus(MANAGED)
if decided ~= nil then
  return decided
end

-- The gateway reports a failed download as state "error"; ModelAvailable carries the reason.
local status = obj.status
if status.state == "error" then
  return result("Degraded", text(condition("ModelAvailable"), "The model is in state error"))
end

return readiness(nil)
