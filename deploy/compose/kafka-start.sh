#!/usr/bin/env bash
# The compose Kafka's entry point (docker-compose.yml mounts it into apache/kafka): the broker's
# configuration from the KAFKA_* variables (KAFKA_LOG_DIRS -> log.dirs; "__" -> "_",
# "___" -> "-"), the storage formatted on first start with the SCRAM users, then the broker.
# SCRAM users are written into the metadata at format time: a volume formatted before they
# existed keeps working only after `docker compose down -v` (or kafka-configs.sh, see
# deploy/README.md "Who may write to Kafka").
set -euo pipefail

: "${CLUSTER_ID:?}" "${SHINCHOKU_KAFKA_ADMIN_PASSWORD:?}" "${SHINCHOKU_KAFKA_INGEST_PASSWORD:?}"
: "${SHINCHOKU_KAFKA_KPI_PASSWORD:?}" "${SHINCHOKU_KAFKA_ALERTS_PASSWORD:?}"

umask 077  # the files below hold passwords
work=${SHINCHOKU_KAFKA_WORK:-/tmp/shinchoku}
bin=${SHINCHOKU_KAFKA_BIN:-/opt/kafka/bin}
mkdir -p "$work"
config="$work/server.properties"

: > "$config"
while IFS='=' read -r name value; do
  case "$name" in
    KAFKA_*_OPTS) continue ;;  # JVM options for the start script, not broker properties
    KAFKA_*) ;;
    *) continue ;;
  esac
  key=${name#KAFKA_}
  key=${key//___/-}
  key=${key//__/@}
  key=${key//_/.}
  key=${key//@/_}
  printf '%s=%s\n' "${key,,}" "$value" >> "$config"
done < <(env)

# For the healthcheck and for operators' Kafka tools (`--command-config`), as the admin.
cat > "$work/admin.properties" <<PROPERTIES
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="${SHINCHOKU_KAFKA_ADMIN_PASSWORD}";
PROPERTIES

scram() { printf 'SCRAM-SHA-512=[name=%s,password=%s]' "$1" "$2"; }
"$bin/kafka-storage.sh" format --ignore-formatted -t "$CLUSTER_ID" -c "$config" \
  --add-scram "$(scram admin "$SHINCHOKU_KAFKA_ADMIN_PASSWORD")" \
  --add-scram "$(scram ingest "$SHINCHOKU_KAFKA_INGEST_PASSWORD")" \
  --add-scram "$(scram kpi "$SHINCHOKU_KAFKA_KPI_PASSWORD")" \
  --add-scram "$(scram alerts "$SHINCHOKU_KAFKA_ALERTS_PASSWORD")" > /dev/null

exec "$bin/kafka-server-start.sh" "$config"
