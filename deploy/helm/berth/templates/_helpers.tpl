{{- define "berth.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "berth.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "berth.labels" -}}
{{ include "berth.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* berth.yaml: the user's config plus what the chart decides (log format, fips). */}}
{{- define "berth.config" -}}
{{- $cfg := deepCopy .Values.config -}}
{{- $_ := set $cfg "log" (merge (default dict $cfg.log) (dict "format" "json")) -}}
{{- if .Values.fips }}{{- $_ := set $cfg "fips" true -}}{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}
