local decided = kstatus(MANAGED)
if decided ~= nil then
  return decided
end

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

return readiness(nil)
