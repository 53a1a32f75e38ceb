local decided = kstatus(MANAGED)
if decided ~= nil then
  return decided
end

-- A finished execution is terminal: failed or cancelled runs are Degraded (as Argo CD does for
-- Workflows and Jobs); a running one is Progressing until ExecutionSucceeded and Ready are True.
local status = obj.status
local succeeded = condition("ExecutionSucceeded")
if status.state == "failed" or status.state == "cancelled" or status.state == "timeout" then
  local message = status.error
  if type(message) ~= "string" or message == "" then
    message = text(succeeded, "The execution ended in state " .. status.state)
  end
  return result("Degraded", message)
end
if isFalse(succeeded) and (succeeded.reason == "Failed" or succeeded.reason == "Cancelled") then
  return result("Degraded", text(succeeded, "The execution did not succeed"))
end

return readiness(nil)
