-- Argo CD health check of the Switchyard kinds (Integration, Source, Mapping), from the status the
-- operator writes: status.observedGeneration and the Ready condition, which rolls up the others.
-- Reasons that pass by themselves (pods rolling out, a Deployment not created yet) are
-- Progressing; every other False reason stops the resource until something is fixed (a missing
-- Mapping or Secret, an invalid rule, NATS unreachable) and is Degraded, Healthy again once fixed.
local transient = {
  RolloutInProgress = true,
  WaitingForDependencies = true,
}

local hs = {}
local generation = obj.metadata.generation or 0
local status = obj.status

if status == nil then
  hs.status = "Progressing"
  hs.message = "waiting for the operator to report a status"
  return hs
end
if (status.observedGeneration or 0) < generation then
  hs.status = "Progressing"
  hs.message = "waiting for the operator to see generation " .. generation
  return hs
end

local ready = nil
if status.conditions ~= nil then
  for _, c in ipairs(status.conditions) do
    if c.type == "Ready" then
      ready = c
    end
  end
end
if ready == nil then
  hs.status = "Progressing"
  hs.message = "waiting for the Ready condition"
  return hs
end
if ready.observedGeneration ~= nil and ready.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Ready is from generation " .. ready.observedGeneration .. "; waiting for generation " .. generation
  return hs
end

local message = ready.reason or ""
if ready.message ~= nil and ready.message ~= "" then
  message = message .. ": " .. ready.message
end
if status.backlog ~= nil then
  message = message .. " (backlog " .. status.backlog .. ")"
end
if obj.metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "deleting; " .. message
elseif ready.status == "True" and ready.reason == "Paused" then
  hs.status = "Suspended"
  hs.message = message
elseif ready.status == "True" then
  hs.status = "Healthy"
  hs.message = message
elseif ready.status == "False" and not transient[ready.reason] then
  hs.status = "Degraded"
  hs.message = message
else
  hs.status = "Progressing"
  hs.message = message
end
return hs
