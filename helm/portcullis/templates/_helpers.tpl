{{/*
Chart name, truncated to the 63 characters a DNS label allows.
*/}}
{{- define "portcullis.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full resource name: <release>-<chart>, or the release name when it already
contains the chart name (release "portcullis" gives "portcullis").
*/}}
{{- define "portcullis.fullname" -}}
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
chart label value: name-version.
*/}}
{{- define "portcullis.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every resource.
*/}}
{{- define "portcullis.labels" -}}
helm.sh/chart: {{ include "portcullis.chart" . }}
{{ include "portcullis.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Labels that select the pods (never change them on upgrade: selectors are immutable).
*/}}
{{- define "portcullis.selectorLabels" -}}
app.kubernetes.io/name: {{ include "portcullis.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The Secret holding client-secret and cookie-secrets: the existing one, or the
one this chart creates.
*/}}
{{- define "portcullis.secretName" -}}
{{- if .Values.secrets.existingSecret }}
{{- .Values.secrets.existingSecret }}
{{- else }}
{{- include "portcullis.fullname" . }}
{{- end }}
{{- end }}

{{/*
The configuration rendered into portcullis.toml: .Values.config with
server.listen forced to the container port, so the probes and the Service
always reach the listener. Secrets never appear here.
*/}}
{{- define "portcullis.config" -}}
{{- $forced := dict "server" (dict "listen" (printf "0.0.0.0:%d" (int .Values.containerPort))) }}
{{- $config := mustMergeOverwrite (deepCopy .Values.config) $forced }}
{{- if hasKey $config "oidc" }}
{{- if hasKey $config.oidc "client_secret" }}
{{- fail "config.oidc.client_secret must not be set: use secrets.clientSecret or secrets.existingSecret (the ConfigMap is not secret)" }}
{{- end }}
{{- end }}
{{- if hasKey $config "cookie" }}
{{- if hasKey $config.cookie "secrets" }}
{{- fail "config.cookie.secrets must not be set: use secrets.cookieSecrets or secrets.existingSecret (the ConfigMap is not secret)" }}
{{- end }}
{{- end }}
{{- toToml $config }}
{{- end }}
