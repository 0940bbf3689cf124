#!/usr/bin/env bash
# Deploy one stage to AWS:  infra/deploy.sh dev|prod|cn
#
# Needs AWS credentials for the target account and region (AWS_PROFILE / AWS_REGION) and an S3
# bucket in that region for the code zip (ARTIFACT_BUCKET). Not runnable in the offline sandbox.
# A stage with its own region in infra/build.py STAGES (cn: cn-north-1, an AWS China account and
# profile) always deploys there; a different AWS_REGION/AWS_DEFAULT_REGION stops the script.
#   ARTIFACT_BUCKET  required  bucket for `aws cloudformation package`
#   STACK_NAME       optional  default scrm-<stage>
#   FIXED_EGRESS_IP  optional  true|false: override the stage's default (dev false, prod true)
#   ALARM_TOPIC_ARN  optional  SNS topic for dead-letter-queue alarms
#   PYTHON           optional  Python 3.11 with requirements-dev (default: python3)
#   WHEELHOUSE       optional  package offline from this wheelhouse directory
set -euo pipefail

STAGE=${1:?usage: infra/deploy.sh dev|prod|cn}
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
PINNED=$("$PY" -c 'import sys; sys.path.insert(0, "infra"); import build; print(build.STAGES[sys.argv[1]].region or "")' "$STAGE")
if [[ -n "$PINNED" ]]; then
  for var in AWS_REGION AWS_DEFAULT_REGION; do
    if [[ -n "${!var:-}" && "${!var}" != "$PINNED" ]]; then
      echo "stage $STAGE deploys to $PINNED, but $var=${!var}" >&2
      exit 1
    fi
  done
  export AWS_REGION=$PINNED AWS_DEFAULT_REGION=$PINNED
fi
STACK=${STACK_NAME:-scrm-$STAGE}
BUCKET=${ARTIFACT_BUCKET:?set ARTIFACT_BUCKET to an S3 bucket in the target region}
OUT=infra/out/$STAGE

# 1. template + zip with .pyc + cfn-lint (no credentials used)
"$PY" infra/package.py "$STAGE" ${WHEELHOUSE:+--wheelhouse "$WHEELHOUSE"}

# 2. upload the zip, deploy the stack (SAM transform: CAPABILITY_AUTO_EXPAND; roles: CAPABILITY_IAM)
aws cloudformation package \
  --template-file "$OUT/sam.json" \
  --s3-bucket "$BUCKET" --s3-prefix "scrm/$STAGE" \
  --output-template-file "$OUT/packaged.yaml"
overrides=()
[[ -n "${FIXED_EGRESS_IP:-}" ]] && overrides+=("FixedEgressIp=$FIXED_EGRESS_IP")
[[ -n "${ALARM_TOPIC_ARN:-}" ]] && overrides+=("AlarmTopicArn=$ALARM_TOPIC_ARN")
aws cloudformation deploy \
  --template-file "$OUT/packaged.yaml" \
  --stack-name "$STACK" \
  --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND \
  --no-fail-on-empty-changeset \
  ${overrides[@]+--parameter-overrides "${overrides[@]}"}

output() {
  aws cloudformation describe-stacks --stack-name "$STACK" \
    --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text
}

# 3. the admin API key: a SecureString CloudFormation cannot create. Made once, never printed.
PARAM=$(output AdminKeyParameter)
if ! aws ssm get-parameter --name "$PARAM" >/dev/null 2>&1; then
  umask 077
  keyfile=$(mktemp)
  trap 'rm -f "$keyfile"' EXIT
  "$PY" -c 'import secrets; print(secrets.token_urlsafe(32), end="")' >"$keyfile"
  aws ssm put-parameter --name "$PARAM" --type SecureString \
    --key-id "$(output SecretsKeyAlias)" --value "file://$keyfile" >/dev/null
  echo "Created the admin key in SSM $PARAM. Read it with:"
  echo "  aws ssm get-parameter --name $PARAM --with-decryption --query Parameter.Value --output text"
fi

# 4. what operators need
aws cloudformation describe-stacks --stack-name "$STACK" --query "Stacks[0].Outputs" --output table
EGRESS_IP=$(output EgressIp)
if [[ -n "$EGRESS_IP" && "$EGRESS_IP" != "None" ]]; then
  echo "WeCom: add $EGRESS_IP to each corp app's trusted IPs (企业可信IP); errcode 60020 otherwise."
fi
