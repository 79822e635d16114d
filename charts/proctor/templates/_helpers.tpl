{{/* Names, labels and the operator's RBAC rules, shared by the templates. */}}

{{- define "proctor.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "proctor.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "proctor.selectorLabels" -}}
app.kubernetes.io/name: {{ include "proctor.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "proctor.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "proctor.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: proctor
{{- end -}}

{{- define "proctor.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "proctor.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "proctor.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Worker images per stage kind: the non-empty ones, with the default filled in. */}}
{{- define "proctor.workerImages" -}}
{{- $images := dict "default" (default (printf "%s:%s" .Values.worker.repository .Chart.AppVersion) .Values.worker.images.default) -}}
{{- range $kind, $image := .Values.worker.images -}}
{{- if and $image (ne $kind "default") -}}
{{- $_ := set $images $kind $image -}}
{{- end -}}
{{- end -}}
{{- toJson $images -}}
{{- end -}}

{{/*
The operator's API use, rule by rule (operator/proctor/cluster.py, and kopf's watches and finalizer
patches in operator/proctor/handlers/). Nothing else: no delete (children go by owner references), no
get of Jobs (they come from the watch), no pods/exec, no update of specs.
*/}}
{{- define "proctor.rules" -}}
# Watch the three kinds (kopf), create results Artifacts, write status. kopf patches the objects
# themselves for its finalizer (held while a daemon works on an object, and on runs whose data is
# deleted with them) and, on those runs only, its handler-progress annotations.
- apiGroups: ["proctor.dev"]
  resources: ["evalruns", "judgeservers"]
  verbs: ["list", "watch", "patch"]
- apiGroups: ["proctor.dev"]
  resources: ["artifacts"]
  verbs: ["list", "watch", "create", "patch"]
- apiGroups: ["proctor.dev"]
  resources: ["evalruns/status", "judgeservers/status", "artifacts/status"]
  verbs: ["patch"]
# Children carry owner references with blockOwnerDeletion; under OwnerReferencesPermissionEnforcement
# (OpenShift) setting it needs update on the owner's finalizers subresource.
- apiGroups: ["proctor.dev"]
  resources: ["evalruns/finalizers", "judgeservers/finalizers", "artifacts/finalizers"]
  verbs: ["update"]
# One Indexed Job per stage (and ingest Jobs): watched, created, patched (suspend/resume, parallelism).
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["list", "watch", "create", "patch"]
# vLLM JudgeServers: a Deployment, a Service and a NetworkPolicy, watched (only Proctor's, by label)
# and converged by server-side apply (patch); the judge pods' states explain a stuck judge.
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["list", "watch", "create", "patch"]
- apiGroups: [""]
  resources: ["services"]
  verbs: ["list", "watch", "create", "patch"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list"]
# A crash-looping judge's last log lines go into its condition (a bounded tail).
- apiGroups: [""]
  resources: ["pods/log"]
  verbs: ["get"]
# NetworkPolicies: a run's workers (default-deny egress), ingest pods (no cluster addresses), vLLM
# judges (callers limited to workers and the operator); watched and re-applied when deleted or stale.
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["list", "watch", "create", "patch"]
# Artifact sources in ConfigMaps; store credentials and judge API keys in Secrets.
- apiGroups: [""]
  resources: ["configmaps", "secrets"]
  verbs: ["get"]
# Events on phase changes and failures (what `kubectl describe` shows).
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end -}}
