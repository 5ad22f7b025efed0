{{/* Names, labels and the values every template shares. */}}

{{- define "jwtgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The fullname names every object of the release: the release name, or
release-chart when the release name does not hold the chart name.
*/}}
{{- define "jwtgate.fullname" -}}
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

{{- define "jwtgate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "jwtgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "jwtgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "jwtgate.labels" -}}
helm.sh/chart: {{ include "jwtgate.chart" . }}
{{ include "jwtgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: jwtgate
{{- end }}

{{- define "jwtgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "jwtgate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "jwtgate.leaderElectionID" -}}
{{- default (printf "%s-leader-election" (include "jwtgate.fullname" .)) .Values.leaderElection.id }}
{{- end }}

{{- define "jwtgate.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Whether sessions are shared between replicas (a Redis URL is configured). */}}
{{- define "jwtgate.redisEnabled" -}}
{{- if or .Values.store.redis.url .Values.store.redis.existingSecret (include "jwtgate.redisBuiltURL" .) }}true{{ end }}
{{- end }}

{{/* The URL the chart writes from store.redis.sentinel or .cluster (no password in it). */}}
{{- define "jwtgate.redisBuiltURL" -}}
{{- $r := .Values.store.redis }}
{{- $s := ternary "s" "" (eq (toString $r.tls) "true") }}
{{- $q := "" }}
{{- if ne (int $r.waitReplicas) 1 }}{{ $q = printf "?wait_replicas=%d" (int $r.waitReplicas) }}{{ end }}
{{- if $r.sentinel.masterName -}}
redis{{ $s }}-sentinel://{{ join "," $r.sentinel.hosts }}/{{ $r.sentinel.masterName }}/{{ int $r.sentinel.db }}{{ $q }}
{{- else if $r.cluster.hosts -}}
redis{{ $s }}-cluster://{{ join "," $r.cluster.hosts }}{{ $q }}
{{- end }}
{{- end }}

{{/* The URL the chart stores in its Secret. */}}
{{- define "jwtgate.redisChartURL" -}}
{{- default (include "jwtgate.redisBuiltURL" .) .Values.store.redis.url }}
{{- end }}

{{- define "jwtgate.redisSecretName" -}}
{{- default (printf "%s-redis" (include "jwtgate.fullname" .)) .Values.store.redis.existingSecret }}
{{- end }}

{{/*
The RBAC that controller-gen generated into config/rbac/role.yaml (kept in sync
as files/rbac/role.yaml by `make manifests`), as a dict:
  controller: the rules of its ClusterRole (policies, status, Secrets, events)
  leaderElection: the rules of its namespaced Role (the Lease)
  events: the controller rules on events, which leader election also needs in
          the release namespace (it records "became leader" there)
*/}}
{{- define "jwtgate.generatedRBAC" -}}
{{- $out := dict "controller" list "leaderElection" list "events" list }}
{{- $proxyKinds := list "ingresses" "httproutes" "securitypolicies" "middlewares" "authorizationpolicies" "configmaps" }}
{{- range $doc := regexSplit "(?m)^---[ \t]*$" (.Files.Get "files/rbac/role.yaml") -1 }}
{{- $obj := fromYaml $doc }}
{{- if $obj.kind }}
{{- if eq $obj.kind "ClusterRole" }}
{{- range $rule := $obj.rules }}
{{- /* The proxy check's reads (controllers/proxycheck.go) only with proxyCheck.enabled. */}}
{{- $proxy := true }}
{{- range $res := $rule.resources }}{{ if not (has $res $proxyKinds) }}{{ $proxy = false }}{{ end }}{{ end }}
{{- if or (not $proxy) $.Values.proxyCheck.enabled }}
{{- $_ := set $out "controller" (append $out.controller $rule) }}
{{- end }}
{{- end }}
{{- range $rule := $obj.rules }}
{{- if has "events" $rule.resources }}
{{- $_ := set $out "events" (append $out.events $rule) }}
{{- end }}
{{- end }}
{{- else if eq $obj.kind "Role" }}
{{- $_ := set $out "leaderElection" (concat $out.leaderElection $obj.rules) }}
{{- end }}
{{- end }}
{{- end }}
{{- if not $out.controller }}
{{- fail "files/rbac/role.yaml holds no ClusterRole rules: run make manifests" }}
{{- end }}
{{- toYaml $out }}
{{- end }}

{{/* Checks of values that the schema cannot express. */}}
{{- define "jwtgate.validate" -}}
{{- if and .Values.admin.enabled (not .Values.admin.tokenSecret.name) }}
{{- fail "admin.enabled needs admin.tokenSecret.name: a Secret in the release namespace holding the admin bearer token" }}
{{- end }}
{{- $r := .Values.store.redis }}
{{- $modes := list }}
{{- if $r.url }}{{ $modes = append $modes "url" }}{{ end }}
{{- if $r.existingSecret }}{{ $modes = append $modes "existingSecret" }}{{ end }}
{{- if or $r.sentinel.masterName $r.sentinel.hosts }}{{ $modes = append $modes "sentinel" }}{{ end }}
{{- if $r.cluster.hosts }}{{ $modes = append $modes "cluster" }}{{ end }}
{{- if gt (len $modes) 1 }}
{{- fail (printf "store.redis: %s are set; set one of url, existingSecret, sentinel and cluster, not both" (join " and " $modes)) }}
{{- end }}
{{- if and $r.sentinel.hosts (not $r.sentinel.masterName) }}
{{- fail "store.redis.sentinel.hosts needs store.redis.sentinel.masterName: the name the sentinels know the master by" }}
{{- end }}
{{- if and $r.sentinel.masterName (not $r.sentinel.hosts) }}
{{- fail "store.redis.sentinel.masterName needs store.redis.sentinel.hosts: the sentinels, host:26379" }}
{{- end }}
{{- if and $r.passwordSecret.name (not (include "jwtgate.redisEnabled" .)) }}
{{- fail "store.redis.passwordSecret needs a Redis: store.redis.url, existingSecret, sentinel or cluster" }}
{{- end }}
{{- $ports := list .Values.ports.http .Values.ports.metrics .Values.ports.health }}
{{- if .Values.admin.enabled }}{{ $ports = append $ports .Values.admin.port }}{{ end }}
{{- if .Values.grpc.enabled }}{{ $ports = append $ports .Values.grpc.port }}{{ end }}
{{- if ne (len $ports) (len (uniq $ports)) }}
{{- fail (printf "ports.http, ports.metrics, ports.health, admin.port and grpc.port must differ: %v" $ports) }}
{{- end }}
{{- end }}
