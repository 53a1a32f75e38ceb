{{/*
bud-operator.name is the chart name, or nameOverride; used in the app.kubernetes.io/name label.
*/}}
{{- define "bud-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
bud-operator.fullname prefixes every resource name: "<release>-bud-operator", or just the release
name when it already contains the chart name. Kubernetes names are at most 63 characters.
*/}}
{{- define "bud-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
bud-operator.chart is "<name>-<version>" for the helm.sh/chart label.
*/}}
{{- define "bud-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
bud-operator.labels are the common labels of every resource the chart creates.
*/}}
{{- define "bud-operator.labels" -}}
helm.sh/chart: {{ include "bud-operator.chart" . }}
{{ include "bud-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: budai
{{- end }}

{{/*
bud-operator.selectorLabels select the operator pods; they must never change between releases
(a Deployment's selector is immutable).
*/}}
{{- define "bud-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "bud-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
bud-operator.serviceAccountName is the ServiceAccount the operator runs as.
*/}}
{{- define "bud-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "bud-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
bud-operator.image is the image reference: repository@digest when a digest is set, otherwise
repository:tag with the tag defaulting to the chart's appVersion.
*/}}
{{- define "bud-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
bud-operator.apiKeySecretName is the Secret holding the gateway API key: the user's existing one,
or the one the chart creates from gateway.apiKey.value.
*/}}
{{- define "bud-operator.apiKeySecretName" -}}
{{- if .Values.gateway.apiKey.existingSecret }}
{{- .Values.gateway.apiKey.existingSecret }}
{{- else }}
{{- printf "%s-api-key" (include "bud-operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/*
bud-operator.apiKeyConfigured is "true" when some Secret provides the API key.
*/}}
{{- define "bud-operator.apiKeyConfigured" -}}
{{- if or .Values.gateway.apiKey.existingSecret .Values.gateway.apiKey.value }}true{{ end }}
{{- end }}

{{/*
bud-operator.watchNamespaces is the list of namespaces served when watch.allNamespaces is false:
watch.namespaces, or the release namespace when that list is empty.
*/}}
{{- define "bud-operator.watchNamespaces" -}}
{{- if .Values.watch.namespaces }}
{{- toYaml (uniq .Values.watch.namespaces) }}
{{- else }}
{{- toYaml (list .Release.Namespace) }}
{{- end }}
{{- end }}

{{/*
bud-operator.resources renders the container resources, leaving out empty values (an empty
cpu limit means "no CPU limit", which Kubernetes spells by omitting the key).
*/}}
{{- define "bud-operator.resources" -}}
{{- $out := dict }}
{{- range $section, $values := . }}
{{- $kept := dict }}
{{- range $name, $value := $values }}
{{- if $value }}
{{- $_ := set $kept $name $value }}
{{- end }}
{{- end }}
{{- if $kept }}
{{- $_ := set $out $section $kept }}
{{- end }}
{{- end }}
{{- toYaml $out }}
{{- end }}

{{/*
bud-operator.namespacedRules are the rules on objects inside the served namespaces; rbac.yaml
puts them in the ClusterRole (all namespaces) or in one Role per served namespace.
*/}}
{{- define "bud-operator.namespacedRules" -}}
# Application: the managed Bud kinds (the lists are generated into _kinds.tpl from the
# operator's kind registry). list/watch feed kopf's watch streams and the operator's
# list-based refresh; get reads one object; patch adds and removes the finalizer
# bud.studio/finalizer and writes the bud.studio/external-id annotation and kopf's progress
# annotations. No create: people and GitOps tools create Bud objects, the operator never does.
- apiGroups: [bud.studio]
  resources: {{ include "bud-operator.kindResources" . }}
  verbs: [get, list, watch, patch]
# Application: BudConnections of the namespace (which gateway and key its resources use);
# patch adds and removes the finalizer that keeps a connection while resources use it.
- apiGroups: [bud.studio]
  resources: {{ include "bud-operator.namespacedConnectionResources" . }}
  verbs: [get, list, watch, patch]
# Application: ttlSecondsAfterFinished deletes a finished BudExecution, like a Job's TTL.
# No other kind is ever deleted by the operator.
- apiGroups: [bud.studio]
  resources: [budexecutions]
  verbs: [delete]
# Application: the status subresource, where conditions, observedGeneration and the mirrored
# remote state are written. The finalizers subresource is not granted: it only guards
# ownerReferences[].blockOwnerDeletion, which the operator never sets.
- apiGroups: [bud.studio]
  resources: {{ include "bud-operator.kindStatusResources" . }}
  verbs: [get, patch]
# Framework and application: Kubernetes Events on the Bud objects (kopf posts them, the
# operator's included, through the core API); create only, events are never read back.
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end }}

{{/*
bud-operator.peeringRules are kopf peering's rules (leader election), for the ClusterKopfPeering
(all namespaces) or the KopfPeering of each served namespace: (dict "resource" "name").
*/}}
{{- define "bud-operator.peeringRules" -}}
# Framework: kopf peering. Each replica watches the peering object to see its peers; list and
# watch cannot be narrowed to one name, and the object holds only keep-alives.
- apiGroups: [kopf.dev]
  resources: [{{ .resource }}]
  verbs: [list, watch]
# Framework: each replica patches its own keep-alive into the status of this one object.
- apiGroups: [kopf.dev]
  resources: [{{ .resource }}]
  resourceNames: [{{ .name }}]
  verbs: [patch]
# Application: the operator creates the peering object at start when it is missing (kopf never
# does, and without it replicas would not see each other). Create cannot be narrowed to a name.
- apiGroups: [kopf.dev]
  resources: [{{ .resource }}]
  verbs: [create]
{{- end }}
