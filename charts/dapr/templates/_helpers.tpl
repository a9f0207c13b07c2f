{{/* An image reference: a name with "/" is taken as it is, else registry/name:tag. */}}
{{- define "dapr.image" -}}
{{- $name := index . 0 -}}
{{- $global := index . 1 -}}
{{- if contains "/" $name -}}
{{- $name -}}
{{- else -}}
{{- printf "%s/%s:%s" $global.registry $name (toString $global.tag) -}}
{{- end -}}
{{- end -}}

{{/* Replicas: global.ha.replicaCount when HA is on, else the section's own. */}}
{{- define "dapr.replicas" -}}
{{- $section := index . 0 -}}
{{- $global := index . 1 -}}
{{- if $global.ha.enabled -}}
{{- $global.ha.replicaCount -}}
{{- else -}}
{{- $section.replicaCount -}}
{{- end -}}
{{- end -}}

{{/* The labels every object of the release carries. */}}
{{- define "dapr.labels" -}}
app.kubernetes.io/part-of: dapr
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- range $key, $value := .Values.global.labels }}
{{ $key }}: {{ $value | quote }}
{{- end }}
{{- end -}}

{{/* Sentry's address as the control plane and the sidecars dial it. */}}
{{- define "dapr.sentryAddress" -}}
{{- if .Values.global.mtls.sentryAddress -}}
{{- .Values.global.mtls.sentryAddress -}}
{{- else -}}
{{- printf "dapr-sentry.%s.svc.%s:443" .Release.Namespace .Values.dapr_sidecar_injector.kubeClusterDomain -}}
{{- end -}}
{{- end -}}

{{/* imagePullSecrets in any of the three shapes Dapr's chart accepts. */}}
{{- define "dapr.imagePullSecrets" -}}
{{- $secrets := .Values.global.imagePullSecrets -}}
{{- if $secrets }}
imagePullSecrets:
{{- if kindIs "string" $secrets }}
- name: {{ $secrets }}
{{- else }}
{{- range $secrets }}
{{- if kindIs "map" . }}
- name: {{ .name }}
{{- else }}
- name: {{ . }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Scheduling settings shared by every control-plane Pod; `app` is its app label. */}}
{{- define "dapr.podScheduling" -}}
{{- $root := index . 0 -}}
{{- $app := index . 1 -}}
{{- with $root.Values.global.ha }}
{{- if .enabled }}
affinity:
  podAntiAffinity:
    {{- if eq .podAntiAffinityPolicy "requiredDuringSchedulingIgnoredDuringExecution" }}
    requiredDuringSchedulingIgnoredDuringExecution:
    - topologyKey: {{ .topologyKey }}
      labelSelector:
        matchLabels:
          app: {{ $app }}
    {{- else }}
    preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: {{ .topologyKey }}
        labelSelector:
          matchLabels:
            app: {{ $app }}
    {{- end }}
{{- end }}
{{- end }}
{{- with $root.Values.global.nodeSelector }}
nodeSelector:
{{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.global.tolerations }}
tolerations:
{{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.global.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- end -}}

{{/* The projected token a control-plane service shows Sentry, with Sentry's audience. */}}
{{- define "dapr.sentryTokenVolume" -}}
- name: dapr-identity-token
  projected:
    sources:
    - serviceAccountToken:
        path: token
        expirationSeconds: 600
        audience: {{ printf "spiffe://%s/ns/%s/dapr-sentry" .Values.global.mtls.controlPlaneTrustDomain .Release.Namespace | quote }}
- name: dapr-trust-bundle
  configMap:
    name: dapr-trust-bundle
{{- end -}}

{{- define "dapr.sentryTokenMounts" -}}
- name: dapr-identity-token
  mountPath: /var/run/secrets/dapr.io/sentrytoken
  readOnly: true
- name: dapr-trust-bundle
  mountPath: /var/run/secrets/dapr.io/tls
  readOnly: true
{{- end -}}

{{/* The environment a control-plane service needs to take its identity from Sentry. */}}
{{- define "dapr.controlPlaneEnv" -}}
- name: NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: DAPR_TRUST_ANCHORS_FILE
  value: /var/run/secrets/dapr.io/tls/ca.crt
- name: DAPR_CONTROL_PLANE_TRUST_DOMAIN
  value: {{ .Values.global.mtls.controlPlaneTrustDomain | quote }}
- name: DAPR_SENTRY_ADDRESS
  value: {{ include "dapr.sentryAddress" . | quote }}
{{- end -}}

{{/* A section's extraEnvVars map as env entries. */}}
{{- define "dapr.extraEnv" -}}
{{- range $key, $value := . }}
- name: {{ $key }}
  value: {{ $value | quote }}
{{- end }}
{{- end -}}

{{/* The restrictive security context of every control-plane container. */}}
{{- define "dapr.securityContext" -}}
securityContext:
  runAsNonRoot: true
  readOnlyRootFilesystem: true
  allowPrivilegeEscalation: false
  capabilities:
    drop: ["ALL"]
  seccompProfile:
    type: RuntimeDefault
{{- end -}}

{{/* Placement's Raft peers: name=host:port for every replica of the StatefulSet. */}}
{{- define "dapr.placementPeers" -}}
{{- $root := index . 0 -}}
{{- $replicas := index . 1 -}}
{{- $peers := list -}}
{{- range $i := until $replicas -}}
{{- $name := printf "dapr-placement-server-%d" $i -}}
{{- $peers = append $peers (printf "%s=%s.dapr-placement-server.%s.svc.%s:%v" $name $name $root.Release.Namespace $root.Values.dapr_sidecar_injector.kubeClusterDomain $root.Values.dapr_placement.ports.raftRPCPort) -}}
{{- end -}}
{{- join "," $peers -}}
{{- end -}}
