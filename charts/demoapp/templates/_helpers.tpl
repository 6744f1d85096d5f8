{{/* Names are scoped by the release, so releases (staging, qa…) never share an object. */}}
{{- define "demoapp.name" -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}

{{- define "demoapp.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Selector labels of one component; call with (dict "root" $ "component" "puma"). */}}
{{- define "demoapp.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "demoapp.image" -}}
{{- printf "%s:%s" .Values.image.repository (required "image.tag is required (inv helm.upgrade passes the built tag)" .Values.image.tag) -}}
{{- end -}}

{{/* What every Rails container gets: the ConfigMap and the two secret keys it needs. */}}
{{- define "demoapp.railsEnv" -}}
envFrom:
  - configMapRef:
      name: {{ include "demoapp.name" . }}-rails-env
env:
  - name: MYSQL_PASSWORD
    valueFrom:
      secretKeyRef:
        name: {{ .Values.existingSecret }}
        key: MYSQL_PASSWORD
  - name: SECRET_KEY_BASE
    valueFrom:
      secretKeyRef:
        name: {{ .Values.existingSecret }}
        key: SECRET_KEY_BASE
{{- end -}}

{{/* Waits until the setup-db Job has loaded the schema. */}}
{{- define "demoapp.waitForDbSetup" -}}
- name: wait-for-db-setup
  image: {{ include "demoapp.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  command: ["sh", "-c", "until ./bin/rails db:abort_if_pending_migrations; do echo waiting for the setup-db Job; sleep 3; done"]
  {{- include "demoapp.railsEnv" . | nindent 2 }}
{{- end -}}
