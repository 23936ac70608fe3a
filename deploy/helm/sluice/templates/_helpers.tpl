{{/*
Chart name, truncated to the 63 characters of a DNS label.
*/}}
{{- define "sluice.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: RELEASE-NAME, or RELEASE when the release name already contains the chart name.
*/}}
{{- define "sluice.fullname" -}}
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
chart-version label value.
*/}}
{{- define "sluice.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Kubernetes recommended labels shared by every resource.
*/}}
{{- define "sluice.labels" -}}
helm.sh/chart: {{ include "sluice.chart" . }}
{{ include "sluice.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: sluice
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels: stable across upgrades.
*/}}
{{- define "sluice.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sluice.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Gateway component labels and selector.
*/}}
{{- define "sluice.gateway.labels" -}}
{{ include "sluice.labels" . }}
app.kubernetes.io/component: gateway
{{- end }}
{{- define "sluice.gateway.selectorLabels" -}}
{{ include "sluice.selectorLabels" . }}
app.kubernetes.io/component: gateway
{{- end }}

{{/*
ext_proc component labels and selector.
*/}}
{{- define "sluice.extproc.labels" -}}
{{ include "sluice.labels" . }}
app.kubernetes.io/component: extproc
{{- end }}
{{- define "sluice.extproc.selectorLabels" -}}
{{ include "sluice.selectorLabels" . }}
app.kubernetes.io/component: extproc
{{- end }}

{{/*
ServiceAccount name.
*/}}
{{- define "sluice.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "sluice.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Image reference: repository@digest, or repository:tag (tag defaults to appVersion).
*/}}
{{- define "sluice.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Whether more than one gateway pod can run: "true" or "".
*/}}
{{- define "sluice.multiReplica" -}}
{{- if .Values.autoscaling.enabled }}
{{- if gt (int .Values.autoscaling.maxReplicas) 1 }}true{{ end }}
{{- else if gt (int .Values.replicas) 1 }}true{{ end }}
{{- end }}

{{/*
Whether the controller runs leader election: controller mode with more than one pod.
*/}}
{{- define "sluice.leaderElect" -}}
{{- if and (eq .Values.mode "controller") (include "sluice.multiReplica" .) }}true{{ end }}
{{- end }}

{{/*
terminationGracePeriodSeconds: the value given, or drain + preStop sleep + 15s.
*/}}
{{- define "sluice.terminationGracePeriodSeconds" -}}
{{- $drain := int .Values.drainTimeoutSeconds }}
{{- $sleep := int .Values.preStopSleepSeconds }}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add $drain $sleep 15 }}
{{- else }}
{{- $t := int .Values.terminationGracePeriodSeconds }}
{{- if le $t (add $drain $sleep) }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed drainTimeoutSeconds + preStopSleepSeconds (%d)" $t (add $drain $sleep)) }}
{{- end }}
{{- $t }}
{{- end }}
{{- end }}

{{/*
ConfigMap holding the resource files in files mode.
*/}}
{{- define "sluice.filesConfigMap" -}}
{{- default (printf "%s-files" (include "sluice.fullname" .)) .Values.files.existingConfigMap }}
{{- end }}

{{/*
Environment shared by the gateway and ext_proc containers: Redis, OTLP, usage database.
*/}}
{{- define "sluice.commonEnv" -}}
{{- if .Values.redis.existingSecret }}
- name: SLUICE_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.existingSecret }}
      key: {{ .Values.redis.key }}
{{- else if .Values.redis.url }}
- name: SLUICE_REDIS_URL
  value: {{ .Values.redis.url | quote }}
{{- end }}
{{- if .Values.otel.endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ .Values.otel.endpoint | quote }}
{{- end }}
{{- if .Values.usage.postgres.existingSecret }}
- name: SLUICE_USAGE_POSTGRES
  valueFrom:
    secretKeyRef:
      name: {{ .Values.usage.postgres.existingSecret }}
      key: {{ .Values.usage.postgres.key }}
{{- end }}
{{- end }}

{{/*
Checks on values that templates cannot express otherwise.
*/}}
{{- define "sluice.validate" -}}
{{- if not (has .Values.mode (list "controller" "files")) }}
{{- fail (printf "mode must be controller or files, not %q" .Values.mode) }}
{{- end }}
{{- if and (eq .Values.mode "files") (not .Values.files.existingConfigMap) (not .Values.files.resources) }}
{{- fail "mode files needs files.resources or files.existingConfigMap" }}
{{- end }}
{{- if and .Values.extproc.enabled (not .Values.files.existingConfigMap) (not .Values.files.resources) }}
{{- fail "extproc.enabled needs files.resources or files.existingConfigMap: sluice extproc reads resource files" }}
{{- end }}
{{- if and .Values.watchNamespace (ne .Values.mode "controller") }}
{{- fail "watchNamespace applies to mode controller only" }}
{{- end }}
{{- if and .Values.watchNamespace .Values.gatewayAPI.enabled }}
{{- fail "gatewayAPI.enabled needs cluster-wide access (GatewayClasses are cluster-scoped): leave watchNamespace empty" }}
{{- end }}
{{- if and .Values.autoscaling.enabled (lt (int .Values.autoscaling.maxReplicas) (int .Values.autoscaling.minReplicas)) }}
{{- fail "autoscaling.maxReplicas must be at least autoscaling.minReplicas" }}
{{- end }}
{{- end }}

{{/*
Namespace of the leader-election Lease: the controller keeps it in the watched namespace
when --namespace is set, else in the pod's own namespace.
*/}}
{{- define "sluice.leaseNamespace" -}}
{{- default .Release.Namespace .Values.watchNamespace }}
{{- end }}
