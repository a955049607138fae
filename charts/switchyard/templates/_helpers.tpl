{{/* Chart name, or nameOverride. */}}
{{- define "switchyard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Name prefix of every object: fullnameOverride, else the release name when it contains the chart
name, else <release>-<name>. Truncated so that suffixes such as "-ingestion" keep names within 63.
*/}}
{{- define "switchyard.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 53 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 53 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 53 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* helm.sh/chart label value. */}}
{{- define "switchyard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object (the generated CRD templates use them too); commonLabels never replace the chart's own. */}}
{{- define "switchyard.labels" -}}
{{- $own := dict
  "helm.sh/chart" (include "switchyard.chart" .)
  "app.kubernetes.io/name" (include "switchyard.name" .)
  "app.kubernetes.io/instance" .Release.Name
  "app.kubernetes.io/version" .Chart.AppVersion
  "app.kubernetes.io/managed-by" .Release.Service
  "app.kubernetes.io/part-of" "switchyard" }}
{{- toYaml (merge $own (.Values.commonLabels | default dict)) }}
{{- end }}

{{/* Labels that select the release's pods; add app.kubernetes.io/component per workload. */}}
{{- define "switchyard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "switchyard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of one component's objects: (dict "ctx" $ "component" "operator"), plus "extra" (e.g. podLabels) that never replace ours. */}}
{{- define "switchyard.componentLabels" -}}
{{- $labels := include "switchyard.labels" .ctx | fromYaml }}
{{- $_ := set $labels "app.kubernetes.io/component" .component }}
{{- toYaml (merge $labels (.extra | default dict)) }}
{{- end }}

{{/* Selector labels of one component's pods: (dict "ctx" $ "component" "operator"). */}}
{{- define "switchyard.componentSelectorLabels" -}}
{{ include "switchyard.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Argo CD sync wave annotation line: (include "switchyard.syncWave" "-5"). */}}
{{- define "switchyard.syncWave" -}}
argocd.argoproj.io/sync-wave: {{ . | quote }}
{{- end }}

{{/*
Image reference: repository:tag, or repository@digest when a digest is set (the tag is then
ignored). The tag defaults to the chart's appVersion. Argument: (dict "image" .Values.image.runtime "ctx" $).
*/}}
{{- define "switchyard.image" -}}
{{- if .image.digest }}
{{- printf "%s@%s" .image.repository .image.digest }}
{{- else }}
{{- printf "%s:%s" .image.repository (default .ctx.Chart.AppVersion .image.tag) }}
{{- end }}
{{- end }}

{{- define "switchyard.runtimeImage" -}}
{{- include "switchyard.image" (dict "image" .Values.image.runtime "ctx" .) }}
{{- end }}

{{- define "switchyard.operatorImage" -}}
{{- include "switchyard.image" (dict "image" .Values.image.operator "ctx" .) }}
{{- end }}

{{/* imagePullSecrets of a pod spec (nothing when none). */}}
{{- define "switchyard.imagePullSecrets" -}}
{{- with .Values.image.pullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end }}

{{- define "switchyard.operator.fullname" -}}
{{- printf "%s-operator" (include "switchyard.fullname" .) }}
{{- end }}

{{- define "switchyard.ingestion.fullname" -}}
{{- printf "%s-ingestion" (include "switchyard.fullname" .) }}
{{- end }}

{{/* The settings ConfigMap (settings.yaml for the ingestion, operator.yaml for the operator). */}}
{{- define "switchyard.settingsConfigMap" -}}
{{- printf "%s-settings" (include "switchyard.fullname" .) }}
{{- end }}

{{/* The Secret the operator writes with every Source's write key; the ingestion mounts it. */}}
{{- define "switchyard.sourcesSecret" -}}
{{- printf "%s-sources" (include "switchyard.fullname" .) }}
{{- end }}

{{- define "switchyard.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (include "switchyard.operator.fullname" .) .Values.operator.serviceAccount.name }}
{{- else }}
{{- /* The namespace's default ServiceAccount would hand the operator's permissions to every pod using it. */ -}}
{{- required "operator.serviceAccount.name is required when operator.serviceAccount.create is false (binding the operator's role to the namespace's default ServiceAccount would grant it to every pod there)" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "switchyard.ingestion.serviceAccountName" -}}
{{- if .Values.ingestion.serviceAccount.create }}
{{- default (include "switchyard.ingestion.fullname" .) .Values.ingestion.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.ingestion.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Fullname of the bundled NATS, by the NATS chart's own rule: its fullnameOverride, else the release
name when it contains the chart name ("nats" or its nameOverride), else <release>-nats.
*/}}
{{- define "switchyard.nats.fullname" -}}
{{- $nats := .Values.nats }}
{{- if $nats.fullnameOverride }}
{{- $nats.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default "nats" $nats.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* NATS URLs as a JSON list: the bundled NATS Service when nats.enabled, else natsConnection.servers. */}}
{{- define "switchyard.nats.servers" -}}
{{- if .Values.nats.enabled }}
{{- $port := dig "config" "nats" "port" 4222 (.Values.nats | toYaml | fromYaml) }}
{{- list (printf "nats://%s.%s.svc.%s:%v" (include "switchyard.nats.fullname" .) .Release.Namespace .Values.clusterDomain $port) | toJson }}
{{- else }}
{{- .Values.natsConnection.servers | toJson }}
{{- end }}
{{- end }}

{{/* Stream replicas: the value when set, else 3 with the bundled clustered NATS, else 1. Argument: (dict "replicas" … "ctx" $). */}}
{{- define "switchyard.streamReplicas" -}}
{{- if kindIs "invalid" .replicas }}
{{- $nats := .ctx.Values.nats }}
{{- if and $nats.enabled (dig "config" "cluster" "enabled" true ($nats | toYaml | fromYaml)) }}3{{ else }}1{{ end }}
{{- else }}
{{- .replicas }}
{{- end }}
{{- end }}

{{/* Where the NATS credential and TLS files are mounted in the operator and ingestion pods. */}}
{{- define "switchyard.nats.credsDir" -}}/etc/switchyard/nats/creds{{- end }}
{{- define "switchyard.nats.tlsDir" -}}/etc/switchyard/nats/tls{{- end }}

{{/* Validates the NATS values; fails with the field's path. */}}
{{- define "switchyard.nats.validate" -}}
{{- $tls := .Values.natsConnection.tls }}
{{- if and $tls.enabled (or $tls.caKey $tls.certKey $tls.keyKey) (not $tls.secretName) }}
{{- if or $tls.certKey $tls.keyKey (ne $tls.caKey "ca.crt") }}
{{- fail "natsConnection.tls.secretName is required when natsConnection.tls.certKey, keyKey or caKey name keys of a Secret" }}
{{- end }}
{{- end }}
{{- if and $tls.enabled (ne (empty $tls.certKey) (empty $tls.keyKey)) }}
{{- fail "natsConnection.tls.certKey and natsConnection.tls.keyKey go together (mutual TLS needs both)" }}
{{- end }}
{{- $auth := .Values.natsConnection.auth }}
{{- if and $auth.secretName (not (or $auth.userKey $auth.tokenKey)) }}
{{- fail "natsConnection.auth.secretName needs natsConnection.auth.userKey (with passwordKey) or tokenKey" }}
{{- end }}
{{- if and (or $auth.userKey $auth.passwordKey $auth.tokenKey) (not $auth.secretName) }}
{{- fail "natsConnection.auth.secretName is required when natsConnection.auth.userKey, passwordKey or tokenKey is set" }}
{{- end }}
{{- end }}

{{/* The `nats` part of both settings files: servers, and the mounted credential and TLS files. */}}
{{- define "switchyard.nats.settings" -}}
{{- include "switchyard.nats.validate" . }}
{{- $nats := dict "servers" (include "switchyard.nats.servers" . | fromJsonArray) }}
{{- with .Values.natsConnection.credentials }}
{{- if .secretName }}
{{- $_ := set $nats "credsFile" (printf "%s/%s" (include "switchyard.nats.credsDir" $) .key) }}
{{- end }}
{{- end }}
{{- $tls := .Values.natsConnection.tls }}
{{- if $tls.enabled }}
{{- $files := dict "handshakeFirst" $tls.handshakeFirst }}
{{- if $tls.secretName }}
{{- if $tls.caKey }}{{ $_ := set $files "caFile" (printf "%s/%s" (include "switchyard.nats.tlsDir" .) $tls.caKey) }}{{ end }}
{{- if $tls.certKey }}{{ $_ := set $files "certFile" (printf "%s/%s" (include "switchyard.nats.tlsDir" .) $tls.certKey) }}{{ end }}
{{- if $tls.keyKey }}{{ $_ := set $files "keyFile" (printf "%s/%s" (include "switchyard.nats.tlsDir" .) $tls.keyKey) }}{{ end }}
{{- end }}
{{- $_ := set $nats "tls" $files }}
{{- end }}
{{- toYaml $nats }}
{{- end }}

{{/* The `streams` part of both settings files. */}}
{{- define "switchyard.streams.settings" -}}
{{- $s := .Values.streams -}}

subjectPrefix: {{ $s.subjectPrefix | quote }}
events:
  name: {{ $s.events.name | quote }}
  replicas: {{ include "switchyard.streamReplicas" (dict "replicas" $s.events.replicas "ctx" .) }}
  maxAge: {{ $s.events.maxAge | quote }}
  maxBytes: {{ int64 $s.events.maxBytes }}
  duplicateWindow: {{ $s.events.duplicateWindow | quote }}
  storage: {{ $s.events.storage | quote }}
deadLetter:
  name: {{ $s.deadLetter.name | quote }}
  replicas: {{ include "switchyard.streamReplicas" (dict "replicas" $s.deadLetter.replicas "ctx" .) }}
  maxAge: {{ $s.deadLetter.maxAge | quote }}
  maxBytes: {{ int64 $s.deadLetter.maxBytes }}
  duplicateWindow: {{ $s.deadLetter.duplicateWindow | quote }}
advisories:
  name: {{ $s.advisories.name | quote }}
  maxAge: {{ $s.advisories.maxAge | quote }}
{{- end }}

{{/* settings.yaml: the runtime settings of the ingestion (`switchyard ingest --settings`). */}}
{{- define "switchyard.runtimeSettings" -}}
nats:
  {{- include "switchyard.nats.settings" . | nindent 2 }}
streams:
  {{- include "switchyard.streams.settings" . | nindent 2 }}
{{- end }}

{{/* A duration value (500ms, 10s, 2m, 1.5h, 7d) in milliseconds, for comparisons. */}}
{{- define "switchyard.durationMs" -}}
{{- $number := regexFind "^[0-9]+(\\.[0-9]+)?" . -}}
{{- $unit := trimPrefix $number . -}}
{{- mulf (float64 $number) (get (dict "ms" 1 "s" 1000 "m" 60000 "h" 3600000 "d" 86400000) $unit) -}}
{{- end }}

{{/* operator.yaml: the operator's settings (`switchyard-operator --settings`). */}}
{{- define "switchyard.operatorSettings" -}}
{{- $o := .Values.operator }}
{{- $s := $o.settings -}}
{{- /* The operator refuses these at start: an upgrade would leave a crash-looping pod. */ -}}
{{- $le := $s.leaderElection -}}
{{- $ms := dict "lease" (include "switchyard.durationMs" $le.leaseDuration | float64) "renew" (include "switchyard.durationMs" $le.renewDeadline | float64) "retry" (include "switchyard.durationMs" $le.retryPeriod | float64) -}}
{{- if not (and (lt $ms.retry $ms.renew) (lt $ms.renew $ms.lease)) }}
{{- fail (printf "operator.settings.leaderElection: retryPeriod (%s) < renewDeadline (%s) < leaseDuration (%s) must hold" $le.retryPeriod $le.renewDeadline $le.leaseDuration) }}
{{- end }}
{{- if gt (include "switchyard.durationMs" $s.retry.baseDelay | float64) (include "switchyard.durationMs" $s.retry.maxDelay | float64) }}
{{- fail (printf "operator.settings.retry: baseDelay (%s) must not exceed maxDelay (%s)" $s.retry.baseDelay $s.retry.maxDelay) }}
{{- end }}
{{- if and (gt (int $o.replicas) 1) (not $le.enabled) }}
{{- fail "operator.replicas above 1 needs operator.settings.leaderElection.enabled: without it every replica acts" }}
{{- end -}}

namespaces: {{ $o.watchNamespaces | toJson }}
workers: {{ int $s.workers }}
resyncPeriod: {{ $s.resyncPeriod | quote }}
backlogInterval: {{ $s.backlogInterval | quote }}
retry:
  baseDelay: {{ $s.retry.baseDelay | quote }}
  maxDelay: {{ $s.retry.maxDelay | quote }}
leaderElection:
  enabled: {{ $s.leaderElection.enabled }}
  namespace: {{ .Release.Namespace | quote }}
  leaseName: {{ $s.leaderElection.leaseName | quote }}
  leaseDuration: {{ $s.leaderElection.leaseDuration | quote }}
  renewDeadline: {{ $s.leaderElection.renewDeadline | quote }}
  retryPeriod: {{ $s.leaderElection.retryPeriod | quote }}
forwarder:
  image: {{ include "switchyard.runtimeImage" . | quote }}
  imagePullPolicy: {{ .Values.image.pullPolicy | quote }}
  imagePullSecrets: {{ .Values.image.pullSecrets | toJson }}
  command: ["node", "/app/runtime/bin/switchyard.js"]
  natsServers: {{ include "switchyard.nats.servers" . }}
  metricsPort: {{ int $o.forwarder.metricsPort }}
  {{- with $o.forwarder.serviceAccountName }}
  serviceAccountName: {{ . | quote }}
  {{- end }}
  resources:
    {{- toYaml $o.forwarder.resources | nindent 4 }}
  podLabels: {{ $o.forwarder.podLabels | toJson }}
  {{- /* What the operator refuses at start, refused here with its reason. */ -}}
  {{- $names := dict }}
  {{- range $i, $e := $o.forwarder.env }}
  {{- if eq $e.name "POD_NAME" }}
  {{- fail (printf "operator.forwarder.env[%d]: POD_NAME is set by the operator (the pod's name)" $i) }}
  {{- end }}
  {{- if hasKey $names $e.name }}
  {{- fail (printf "operator.forwarder.env[%d]: %s is named twice" $i $e.name) }}
  {{- end }}
  {{- $_ := set $names $e.name true }}
  {{- end }}
  {{- if hasKey $o.forwarder.podAnnotations "switchyard.io/config-checksum" }}
  {{- fail "operator.forwarder.podAnnotations: switchyard.io/config-checksum is the operator's (it rolls the forwarder pods when their configuration changes)" }}
  {{- end }}
  {{- with $o.forwarder.env }}
  env: {{ . | toJson }}
  {{- end }}
  {{- with $o.forwarder.nodeSelector }}
  nodeSelector: {{ . | toJson }}
  {{- end }}
  {{- with $o.forwarder.tolerations }}
  tolerations: {{ . | toJson }}
  {{- end }}
  {{- with $o.forwarder.affinity }}
  affinity: {{ . | toJson }}
  {{- end }}
  {{- with $o.forwarder.priorityClassName }}
  priorityClassName: {{ . | quote }}
  {{- end }}
  {{- with $o.forwarder.podAnnotations }}
  podAnnotations: {{ . | toJson }}
  {{- end }}
ingestion:
  namespace: {{ .Release.Namespace | quote }}
  sourcesSecret: {{ include "switchyard.sourcesSecret" . | quote }}
nats:
  {{- include "switchyard.nats.settings" . | nindent 2 }}
streams:
  {{- include "switchyard.streams.settings" . | nindent 2 }}
{{- end }}

{{/*
Volumes of the NATS credential and TLS Secrets (nothing when none), and their mounts. Mounted
read-only in the operator and ingestion pods; the settings reference the files by path.
*/}}
{{- define "switchyard.nats.volumes" -}}
{{- with .Values.natsConnection.credentials }}
{{- if .secretName }}
- name: nats-creds
  secret:
    secretName: {{ .secretName }}
    defaultMode: 288  # 0440: owner and group (fsGroup) only
    items:
      - key: {{ .key }}
        path: {{ .key }}
{{- end }}
{{- end }}
{{- $tls := .Values.natsConnection.tls }}
{{- if and $tls.enabled $tls.secretName }}
- name: nats-tls
  secret:
    secretName: {{ $tls.secretName }}
    defaultMode: 288  # 0440: owner and group (fsGroup) only
    items:
      {{- range (list $tls.caKey $tls.certKey $tls.keyKey) }}
      {{- if . }}
      - key: {{ . }}
        path: {{ . }}
      {{- end }}
      {{- end }}
{{- end }}
{{- end }}

{{- define "switchyard.nats.volumeMounts" -}}
{{- if .Values.natsConnection.credentials.secretName }}
- name: nats-creds
  mountPath: {{ include "switchyard.nats.credsDir" . }}
  readOnly: true
{{- end }}
{{- if and .Values.natsConnection.tls.enabled .Values.natsConnection.tls.secretName }}
- name: nats-tls
  mountPath: {{ include "switchyard.nats.tlsDir" . }}
  readOnly: true
{{- end }}
{{- end }}

{{/* NATS_USER / NATS_PASSWORD / NATS_TOKEN from the auth Secret (nothing when none). */}}
{{- define "switchyard.nats.authEnv" -}}
{{- with .Values.natsConnection.auth }}
{{- if .secretName }}
{{- if .userKey }}
- name: NATS_USER
  valueFrom:
    secretKeyRef:
      name: {{ .secretName }}
      key: {{ .userKey }}
{{- end }}
{{- if .passwordKey }}
- name: NATS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .secretName }}
      key: {{ .passwordKey }}
{{- end }}
{{- if .tokenKey }}
- name: NATS_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ .secretName }}
      key: {{ .tokenKey }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* Egress rules shared by the NetworkPolicies: DNS and NATS (when egress is restricted). */}}
{{- define "switchyard.networkPolicy.egressCommon" -}}
{{- $egress := .Values.networkPolicy.egress -}}
- ports:
    - protocol: UDP
      port: 53
    - protocol: TCP
      port: 53
  {{- with $egress.dns.to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
- ports:
    {{- range $egress.nats.ports }}
    - protocol: TCP
      port: {{ int . }}
    {{- end }}
  {{- with $egress.nats.to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- with $egress.extraRules }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The operator's rules on the namespaces it reconciles (ClusterRole, or a Role per watched namespace). */}}
{{- define "switchyard.operator.rules" -}}
- apiGroups: ["switchyard.io"]
  resources: ["sources", "integrations", "mappings"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["switchyard.io"]
  resources: ["sources/status", "integrations/status", "mappings/status"]
  verbs: ["patch"]
# Owner references that block deletion need it where OwnerReferencesPermissionEnforcement runs.
- apiGroups: ["switchyard.io"]
  resources: ["integrations/finalizers"]
  verbs: ["update"]
- apiGroups: [""]
  resources: ["secrets", "configmaps"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}
