-- A pipeline paused on purpose (spec.paused) is Suspended, not broken.
local status = obj.status
if spec.paused == true or status.state == "paused" then
  return result("Suspended", "The pipeline is paused")
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
