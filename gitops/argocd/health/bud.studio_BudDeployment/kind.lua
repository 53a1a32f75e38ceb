-- A deployment stopped on purpose is not broken: Suspended, like a scaled-to-zero workload.
local status = obj.status
if spec.stopped == true then
  return result("Suspended", "The deployment is stopped (spec.stopped is true)")
end
if status.state == "failed" then
  return result("Degraded", text(condition("Ready"), "The deployment is in state failed"))
end
-- An unhealthy cluster makes the endpoint unusable even when replicas report ready.
local clusterHealthy = condition("ClusterHealthy")
if isFalse(clusterHealthy) then
  return result("Degraded", text(clusterHealthy, "The deployment's cluster is not healthy"))
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
