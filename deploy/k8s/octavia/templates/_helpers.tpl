{{/* Names, labels and shared pieces of the Octavia chart (modelled on kuberay's helm-chart/ray-cluster). */}}

{{- define "octavia.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "octavia.fullname" -}}
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

{{- define "octavia.selectorLabels" -}}
app.kubernetes.io/name: {{ include "octavia.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "octavia.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "octavia.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "octavia.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The Serve config file, unchanged: files/serve-<profile>.yaml (copies of serve_apps/configs/, kept equal by
     tests/deploy/test_helm_chart.py), or the user's own. */}}
{{- define "octavia.serveConfig" -}}
{{- if .Values.serve.configOverride -}}
{{- .Values.serve.configOverride -}}
{{- else -}}
{{- $profile := .Values.serve.profile -}}
{{- if not (has $profile (list "cpu" "gpu")) -}}
{{- fail (printf "serve.profile must be cpu or gpu, not %q" $profile) -}}
{{- end -}}
{{- .Files.Get (printf "files/serve-%s.yaml" $profile) -}}
{{- end -}}
{{- end -}}

{{- define "octavia.rayAuthSecret" -}}
{{- default (printf "%s-ray-auth" (include "octavia.fullname" .)) .Values.ray.auth.existingSecret -}}
{{- end -}}

{{- define "octavia.appSecret" -}}
{{- default (printf "%s-app" (include "octavia.fullname" .)) .Values.controlPlane.secrets.existingSecret -}}
{{- end -}}

{{- define "octavia.dataClaim" -}}
{{- default (printf "%s-data" (include "octavia.fullname" .)) .Values.storage.data.existingClaim -}}
{{- end -}}

{{- define "octavia.modelClaim" -}}
{{- default (printf "%s-models" (include "octavia.fullname" .)) .Values.storage.models.existingClaim -}}
{{- end -}}

{{/* KubeRay names the RayService's head service <rayservice>-head-svc; the Jobs API is its dashboard port. */}}
{{- define "octavia.rayDashboardUrl" -}}
{{- printf "http://%s-head-svc.%s.svc:8265" (include "octavia.fullname" .) .Release.Namespace -}}
{{- end -}}

{{- define "octavia.apiUrl" -}}
{{- printf "http://%s-api.%s.svc:%v" (include "octavia.fullname" .) .Release.Namespace .Values.controlPlane.service.port -}}
{{- end -}}

{{/* Environment shared by Ray containers and the API: where data and models live. */}}
{{- define "octavia.storageEnv" -}}
- name: OCTAVIA_DATA_DIR
  value: {{ .Values.storage.data.mountPath | quote }}
{{- if .Values.storage.models.enabled }}
- name: OCTAVIA_MODEL_DIR
  value: {{ .Values.storage.models.mountPath | quote }}
{{- end }}
- name: OCTAVIA_ARTIFACT_DIR
  value: {{ printf "%s/artifacts" .Values.storage.data.mountPath | quote }}
{{- with .Values.storage.data.artifactMaxSize }}
- name: OCTAVIA_ARTIFACT_MAX_SIZE
  value: {{ . | quote }}
{{- end }}
{{- end -}}

{{- define "octavia.storageMounts" -}}
- name: data
  mountPath: {{ .Values.storage.data.mountPath }}
{{- if .Values.storage.models.enabled }}
- name: models
  mountPath: {{ .Values.storage.models.mountPath }}
{{- end }}
{{- end -}}

{{- define "octavia.storageVolumes" -}}
- name: data
  persistentVolumeClaim:
    claimName: {{ include "octavia.dataClaim" . }}
{{- if .Values.storage.models.enabled }}
- name: models
  persistentVolumeClaim:
    claimName: {{ include "octavia.modelClaim" . }}
{{- end }}
{{- end -}}

{{/* With a model-cache volume, fill it from the image's offline model pack first (idempotent: verified files are
     kept); quality-profile hub models are added there by the Serve replicas on first start. */}}
{{- define "octavia.modelsInit" -}}
{{- if .Values.storage.models.enabled }}
initContainers:
  - name: models
    image: {{ include "octavia.image" . }}
    imagePullPolicy: {{ .Values.image.pullPolicy }}
    command: ["octavia", "models", "fetch", "--profile", "offline", "--quiet"]
    env:
      {{- include "octavia.storageEnv" . | nindent 6 }}
    volumeMounts:
      {{- include "octavia.storageMounts" . | nindent 6 }}
{{- end }}
{{- end -}}
