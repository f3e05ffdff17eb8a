{{/* Names and labels shared by every object of the release. */}}
{{- define "upsell.name" -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "upsell.labels" -}}
app.kubernetes.io/name: upsell-stream
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The selector of one role: (dict "root" $ "role" "worker") */}}
{{- define "upsell.selector" -}}
app.kubernetes.io/name: upsell-stream
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .role }}
{{- end -}}

{{- define "upsell.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}
{{- end -}}

{{/* The HTTP port of a role: the collector's own, else the API port (metrics and probes). */}}
{{- define "upsell.port" -}}
{{- if eq .role "collector" -}}
{{ .root.Values.settings.UPSELL_COLLECTOR_PORT | default "6067" }}
{{- else -}}
{{ .root.Values.settings.UPSELL_API_PORT | default "6066" }}
{{- end -}}
{{- end -}}

{{/* Secrets mounted as files: name -> (secret, items, variables). */}}
{{- define "upsell.fileSecrets" -}}
{{- $s := .Values.secrets -}}
{{- $out := dict -}}
{{- if $s.redisPassword.name -}}
{{- $_ := set $out "redis-password" (dict "secret" $s.redisPassword.name "keys" (list $s.redisPassword.key) "vars" (dict "UPSELL_REDIS_PASSWORD_FILE" $s.redisPassword.key)) -}}
{{- end -}}
{{- if $s.redisCa.name -}}
{{- $_ := set $out "redis-ca" (dict "secret" $s.redisCa.name "keys" (list $s.redisCa.key) "vars" (dict "UPSELL_REDIS_CA_FILE" $s.redisCa.key)) -}}
{{- end -}}
{{- if $s.kafkaPassword.name -}}
{{- $_ := set $out "kafka-password" (dict "secret" $s.kafkaPassword.name "keys" (list $s.kafkaPassword.key) "vars" (dict "UPSELL_KAFKA_SASL_PASSWORD_FILE" $s.kafkaPassword.key)) -}}
{{- end -}}
{{- if $s.kafkaCa.name -}}
{{- $_ := set $out "kafka-ca" (dict "secret" $s.kafkaCa.name "keys" (list $s.kafkaCa.key) "vars" (dict "UPSELL_KAFKA_CA_FILE" $s.kafkaCa.key)) -}}
{{- end -}}
{{- if $s.kafkaClientCert.name -}}
{{- $_ := set $out "kafka-client" (dict "secret" $s.kafkaClientCert.name "keys" (list $s.kafkaClientCert.cert $s.kafkaClientCert.key) "vars" (dict "UPSELL_KAFKA_CERT_FILE" $s.kafkaClientCert.cert "UPSELL_KAFKA_KEY_FILE" $s.kafkaClientCert.key)) -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}
