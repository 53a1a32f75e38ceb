-- The gateway reports a failed download as state "error"; ModelAvailable carries the reason.
local status = obj.status
if status.state == "error" then
  return result("Degraded", text(condition("ModelAvailable"), "The model is in state error"))
end

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
  return result("Healthy", text(ready, "Ready"))
end
return result("Progressing", text(ready, "Waiting for the Ready condition"))
