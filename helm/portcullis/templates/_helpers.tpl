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
The configuration rendered into portcullis.toml: .Values.config, plus the keys
the chart owns (server.listen from containerPort, server.metrics_listen from
metrics.*, server.tls_* from tls.*), and oidc.redirect_url defaulted from the
Ingress host. Secrets never appear here.
*/}}
{{- define "portcullis.configData" -}}
{{- $config := deepCopy (.Values.config | default dict) }}
{{- $userServer := get $config "server" | default dict }}
{{- $oidc := get $config "oidc" | default dict }}
{{- if hasKey $oidc "client_secret" }}
{{- fail "config.oidc.client_secret must not be set: use secrets.clientSecret or secrets.existingSecret (the ConfigMap is not secret)" }}
{{- end }}
{{- if hasKey (get $config "cookie" | default dict) "secrets" }}
{{- fail "config.cookie.secrets must not be set: use secrets.cookieSecrets or secrets.existingSecret (the ConfigMap is not secret)" }}
{{- end }}
{{- range $key := list "listen" "metrics_listen" "tls_cert_file" "tls_key_file" }}
{{- if hasKey $userServer $key }}
{{- fail (printf "config.server.%s is set by the chart (containerPort, metrics.*, tls.*): remove it from config.server" $key) }}
{{- end }}
{{- end }}
{{- $server := dict "listen" (printf "0.0.0.0:%d" (int .Values.containerPort)) }}
{{- if .Values.metrics.enabled }}
{{- $_ := set $server "metrics_listen" (printf "0.0.0.0:%d" (int .Values.metrics.port)) }}
{{- end }}
{{- if .Values.tls.enabled }}
{{- $_ := required "tls.secretName is required when tls.enabled (a kubernetes.io/tls Secret)" .Values.tls.secretName }}
{{- $_ := set $server "tls_cert_file" "/etc/portcullis/tls/tls.crt" }}
{{- $_ := set $server "tls_key_file" "/etc/portcullis/tls/tls.key" }}
{{- end }}
{{- $_ := set $config "server" (mustMergeOverwrite $userServer $server) }}
{{- if and (not (get $oidc "redirect_url")) .Values.ingress.enabled .Values.ingress.host }}
{{- $_ := set $oidc "redirect_url" (printf "https://%s/oauth2/callback" .Values.ingress.host) }}
{{- end }}
{{- $_ := required "config.oidc.issuer_url is required (the provider's issuer, e.g. https://dex.example.com)" (get $oidc "issuer_url") }}
{{- $_ := required "config.oidc.client_id is required (the provider's client id for Portcullis)" (get $oidc "client_id") }}
{{- $_ := required "config.oidc.redirect_url is required (https://<auth host>/oauth2/callback), or set ingress.enabled and ingress.host" (get $oidc "redirect_url") }}
{{- $_ := set $config "oidc" $oidc }}
{{- $session := get $config "session" | default dict }}
{{- if eq (toString (get $session "store")) "redis" }}
{{- $redis := get $config "redis" | default dict }}
{{- $mode := get $redis "mode" | default "standalone" }}
{{- if eq $mode "sentinel" }}
{{- if or (not (get $redis "nodes")) (not (get $redis "sentinel_master")) }}
{{- fail "config.redis.mode = sentinel needs config.redis.nodes (the sentinels) and config.redis.sentinel_master" }}
{{- end }}
{{- else if eq $mode "cluster" }}
{{- if not (get $redis "nodes") }}
{{- fail "config.redis.mode = cluster needs config.redis.nodes (seed nodes)" }}
{{- end }}
{{- else if eq $mode "standalone" }}
{{- if not (or (get $redis "url") .Values.secrets.redisUrl .Values.secrets.existingSecret) }}
{{- fail "config.session.store = redis (standalone) needs config.redis.url, secrets.redisUrl or a redis URL in secrets.existingSecret" }}
{{- end }}
{{- else }}
{{- fail (printf "config.redis.mode must be standalone, sentinel or cluster, not %q" (toString $mode)) }}
{{- end }}
{{- end }}
{{- toJson $config }}
{{- end }}

{{/*
portcullis.toml, rendered by the TOML helpers below (not Helm's toToml:
values read from YAML hold every number as a float, which toToml would write
as 16384.0, and Portcullis refuses a float where it wants an integer).
*/}}
{{- define "portcullis.config" -}}
{{- $config := include "portcullis.configData" . | fromJson }}
{{- include "portcullis.toml.table" (dict "table" $config "path" list) | trim }}
{{- end }}

{{/*
A TOML table's body. Argument: (dict "table" MAP "path" LIST-OF-KEYS).
Plain keys first (scalars and arrays of scalars, sorted), then sub-tables as
[path.key], then arrays of tables as [[path.key]]. null values are left out,
so Portcullis's default applies.
*/}}
{{- define "portcullis.toml.table" -}}
{{- $path := .path }}
{{- range $k, $v := .table }}
{{- if not (or (kindIs "invalid" $v) (kindIs "map" $v) (include "portcullis.toml.isTableArray" $v)) }}
{{ include "portcullis.toml.key" $k }} = {{ include "portcullis.toml.value" $v }}
{{- end }}
{{- end }}
{{- range $k, $v := .table }}
{{- if kindIs "map" $v }}
{{- $sub := append $path $k }}
{{ printf "" }}
[{{ include "portcullis.toml.path" $sub }}]
{{- include "portcullis.toml.table" (dict "table" $v "path" $sub) }}
{{- end }}
{{- end }}
{{- range $k, $v := .table }}
{{- if include "portcullis.toml.isTableArray" $v }}
{{- $sub := append $path $k }}
{{- range $item := $v }}
{{ printf "" }}
[[{{ include "portcullis.toml.path" $sub }}]]
{{- include "portcullis.toml.table" (dict "table" $item "path" $sub) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* "true" when the value is a non-empty list of maps (an array of tables). */}}
{{- define "portcullis.toml.isTableArray" -}}
{{- if and (kindIs "slice" .) (gt (len .) 0) }}
{{- $maps := 0 }}
{{- range $item := . }}
{{- if kindIs "map" $item }}{{ $maps = add1 $maps }}{{ end }}
{{- end }}
{{- if eq $maps (len .) }}true
{{- else if gt $maps 0 }}
{{- fail "config: a list mixes tables and plain values, which TOML cannot express" }}
{{- end }}
{{- end }}
{{- end }}

{{/* A key: bare when it may be, else a quoted string. */}}
{{- define "portcullis.toml.key" -}}
{{- if regexMatch "^[A-Za-z0-9_-]+$" . }}{{ . }}{{ else }}{{ toJson . }}{{ end }}
{{- end }}

{{/* A dotted table path from a list of keys. */}}
{{- define "portcullis.toml.path" -}}
{{- $parts := list }}
{{- range . }}{{ $parts = append $parts (include "portcullis.toml.key" .) }}{{ end }}
{{- join "." $parts }}
{{- end }}

{{/*
A TOML value. Strings become basic strings through JSON escaping (JSON's
escapes, \" \\ \n \uXXXX..., are TOML's too); whole numbers are written as
integers; lists of scalars as inline arrays.
*/}}
{{- define "portcullis.toml.value" -}}
{{- if kindIs "string" . }}{{ toJson . }}
{{- else if kindIs "bool" . }}{{ ternary "true" "false" . }}
{{- else if or (kindIs "float64" .) (kindIs "float32" .) }}
{{- if eq (float64 .) (floor .) }}{{ printf "%d" (int64 .) }}{{ else }}{{ printf "%v" . }}{{ end }}
{{- else if or (kindIs "int" .) (kindIs "int64" .) (kindIs "int32" .) (kindIs "uint64" .) }}{{ printf "%d" . }}
{{- else if kindIs "slice" . }}
{{- $items := list }}
{{- range $item := . }}
{{- if or (kindIs "map" $item) (kindIs "invalid" $item) }}
{{- fail "config: a list holds a table or a null among plain values" }}
{{- end }}
{{- $items = append $items (include "portcullis.toml.value" $item) }}
{{- end }}[{{ join ", " $items }}]
{{- else }}
{{- fail (printf "config: cannot write a %s as TOML" (kindOf .)) }}
{{- end }}
{{- end }}

{{/*
Milliseconds in a humantime duration ("5s", "1m 30s", "500ms", "2h").
*/}}
{{- define "portcullis.durationMs" -}}
{{- $total := 0 }}
{{- $units := dict "ms" 1 "s" 1000 "sec" 1000 "secs" 1000 "m" 60000 "min" 60000 "mins" 60000 "h" 3600000 "hr" 3600000 "hrs" 3600000 "d" 86400000 }}
{{- $parts := regexFindAll "[0-9]+ *[a-z]+" (toString .) -1 }}
{{- if not $parts }}{{ fail (printf "cannot read the duration %q (write e.g. \"30s\")" (toString .)) }}{{ end }}
{{- range $part := $parts }}
{{- $n := regexFind "^[0-9]+" $part | atoi }}
{{- $unit := regexFind "[a-z]+$" $part }}
{{- if not (hasKey $units $unit) }}{{ fail (printf "cannot read the duration unit %q" $unit) }}{{ end }}
{{- $total = add $total (mul $n (get $units $unit)) }}
{{- end }}
{{- $total }}
{{- end }}

{{/*
Environment variables taken from the Secret (the chart's or the existing one).
*/}}
{{- define "portcullis.secretEnv" -}}
{{- $name := include "portcullis.secretName" . }}
- name: PORTCULLIS_OIDC__CLIENT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ $name }}
      key: {{ .Values.secrets.keys.clientSecret }}
- name: PORTCULLIS_COOKIE__SECRETS
  valueFrom:
    secretKeyRef:
      name: {{ $name }}
      key: {{ .Values.secrets.keys.cookieSecrets }}
{{- if .Values.secrets.existingSecret }}
{{- if .Values.secrets.keys.redisUrl }}
- name: PORTCULLIS_REDIS__URL
  valueFrom:
    secretKeyRef:
      name: {{ $name }}
      key: {{ .Values.secrets.keys.redisUrl }}
      optional: true
{{- end }}
{{- else if .Values.secrets.redisUrl }}
- name: PORTCULLIS_REDIS__URL
  valueFrom:
    secretKeyRef:
      name: {{ $name }}
      key: {{ .Values.secrets.keys.redisUrl }}
{{- end }}
{{- end }}
