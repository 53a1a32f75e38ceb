local decided = kstatus(MANAGED)
if decided ~= nil then
  return decided
end

-- A pipeline paused on purpose (spec.paused) is Suspended, not broken.
local status = obj.status
if spec.paused == true or status.state == "paused" then
  return result("Suspended", "The pipeline is paused")
end

return readiness(nil)
